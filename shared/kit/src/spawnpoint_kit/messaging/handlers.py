"""Handler tables: what a service does with each event type arriving on one of its queues.

A service declares, in its ``bootstrap.py``, one ``Subscription`` per queue it consumes:

```
HANDLERS: HandlerTable[OrderUnitOfWork] = {
    OrderPaid: [orders.apply_payment_event],
    OrderExpired: [orders.apply_payment_event],
}
runtime.consume(Subscription(ORDER_LIFECYCLE, HANDLERS, unit_of_work=uow_factory))
```

For each message the kit's consumer parses the event, picks the handlers registered for its type (the
most specific class in the table wins; ``Event`` catches every type), opens one unit of work bound to
the delivery, claims the inbox key ``(consumer, event id)``, runs the handlers in order, and commits:
every handler's effects and every event they stage commit together, or none do. An event already
claimed (a redelivery, a duplicate publish) runs ``on_duplicate`` if one is given and is acknowledged.
A type the table does not name can only arrive by a wrong binding: it is dead-lettered with the reason
``unexpected_event``.

``batched=True`` (group commit) lets deliveries that arrive together share one transaction: while one
batch's transaction is in flight, the deliveries arriving meanwhile wait and then run together, each with its
own inbox claim and handlers, in one unit of work with one commit (``group_commit.py``). Nothing waits for
company: a lone delivery runs exactly as without batching. Each delivery is still acknowledged only after the
commit holding its effects; if anything in a batch fails, the batch is rolled back and every delivery of it is
handled again alone, so a poison message fails only itself. For handlers that only touch the database.

A ``batch_handler`` goes further for a queue whose every event is the same kind of work: the batch's inbox
keys are claimed in one statement and its first-time events are handed to that one handler together, so it
can do for all of them in one round trip what each would do in one of its own.

``own_transactions=True`` is for the rare handler that must talk to the outside world between two
transactions (the provisioner calls the panel outside any transaction): it receives the unit of work
unopened, opens it as often as it needs and claims its own inbox key.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from spawnpoint_contracts import Event

from .. import tracing
from ..unit_of_work import UnitOfWork
from .delivery import DeadLetter, Delivery
from .group_commit import GroupCommit
from .specs import QueueSpec

U = TypeVar("U", bound=UnitOfWork)

EventHandler = Callable[[Any, U], Awaitable[None]]
"""``async def handle(event: SomeEvent, uow: TheServiceUnitOfWork) -> None``."""

HandlerTable = Mapping[type[Event], Sequence[EventHandler[U]]]

BatchHandler = Callable[[Sequence[Event], U], Awaitable[None]]
"""``async def handle(events, uow) -> None``: a batch's first-time events, in arrival order, handled together
in the open unit of work (``Subscription.batch_handler``)."""


def handlers_for(table: HandlerTable[U], event: Event) -> Sequence[EventHandler[U]]:
    """The handlers of the most specific class of ``event`` that the table names (none: empty)."""
    for kind in type(event).__mro__:
        if kind in table:
            return table[kind]
    return ()


@dataclass(frozen=True)
class Subscription(Generic[U]):
    """One queue of a service: its spec, its handler table and how to make its unit of work."""

    queue: QueueSpec
    handlers: HandlerTable[U]
    unit_of_work: Callable[[], U]
    consumer: str | None = None
    """The inbox's consumer name; the queue's name by default."""
    on_duplicate: EventHandler[U] | None = None
    """Runs (and commits) in place of the handlers when the event was handled before."""
    own_transactions: bool = False
    batched: bool = False
    """Deliveries that arrive together share one transaction (see the module docstring)."""
    batch_handler: BatchHandler[U] | None = None
    """With ``batched``: how a batch's first-time events are handled together (their inbox keys claimed in
    one statement, then this, once), in place of the table's handlers one event after the other. Only for a
    queue whose events all mean the same kind of work, handled together exactly as they would be one by one
    in the same transaction (status-service's projection). A lone delivery still runs the table's handlers."""
    _group: GroupCommit[U] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.batched and not self.own_transactions:
            object.__setattr__(self, "_group", GroupCommit(self))

    @property
    def inbox_consumer(self) -> str:
        return self.consumer or self.queue.name

    async def handle(self, event: Event, delivery: Delivery) -> None:
        """Run the event's handlers in one unit of work (see the module docstring); with ``batched``, in the
        batch that is forming, or alone when it is the only one or its batch failed."""
        # With tracing on every delivery keeps a transaction of its own, so its handler spans stay in its trace.
        if self._group is not None and not tracing.ENABLED and await self._group.handled(event, delivery):
            return
        await self.handle_alone(event, delivery)

    async def handle_alone(self, event: Event, delivery: Delivery) -> None:
        """Run the event's handlers in a unit of work of their own."""
        uow = self.unit_of_work()
        uow.delivery = delivery
        if self.own_transactions:
            for handler in self.handlers_of(event):
                await _run(handler, event, uow)
            return
        async with uow:
            if await self.handle_in(uow, event, delivery) or self.on_duplicate is not None:
                await uow.commit()

    def handlers_of(self, event: Event) -> Sequence[EventHandler[U]]:
        """The event's handlers; ``DeadLetter`` for a type the table does not name (a wrong binding)."""
        handlers = handlers_for(self.handlers, event)
        if not handlers:
            raise DeadLetter("unexpected_event", f"{event.event_type} does not belong on {self.queue.name}")
        return handlers

    async def handle_in(self, uow: U, event: Event, delivery: Delivery) -> bool:
        """Claim and handle one delivery inside ``uow``, opened (and committed) by the caller; False when it
        was handled before (``on_duplicate`` ran, if there is one)."""
        handlers = self.handlers_of(event)
        uow.delivery = delivery
        first = await uow.claim(
            self.inbox_consumer, str(event.event_id), event_type=event.event_type, order_id=event.order_id
        )
        if not first:
            if tracing.ENABLED:
                tracing.annotate({"spawnpoint.duplicate": True})
            if self.on_duplicate is not None:
                await self.on_duplicate(event, uow)
            return False
        for handler in handlers:
            await _run(handler, event, uow)
        return True


async def _run(handler: EventHandler[U], event: Event, uow: U) -> None:
    """One handler of the table; with tracing on, in a span named after it (``project_event``,
    ``on_order_paid``), so a trace shows what each service did with the event."""
    if not tracing.ENABLED:
        await handler(event, uow)
        return
    name = getattr(handler, "__name__", None) or type(handler).__name__
    with tracing.span(name, attributes={"spawnpoint.event_type": event.event_type}):
        await handler(event, uow)
