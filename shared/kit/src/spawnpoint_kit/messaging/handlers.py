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

``own_transactions=True`` is for the rare handler that must talk to the outside world between two
transactions (the provisioner calls the panel outside any transaction): it receives the unit of work
unopened, opens it as often as it needs and claims its own inbox key.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from spawnpoint_contracts import Event

from .. import tracing
from ..unit_of_work import UnitOfWork
from .delivery import DeadLetter, Delivery
from .specs import QueueSpec

U = TypeVar("U", bound=UnitOfWork)

EventHandler = Callable[[Any, U], Awaitable[None]]
"""``async def handle(event: SomeEvent, uow: TheServiceUnitOfWork) -> None``."""

HandlerTable = Mapping[type[Event], Sequence[EventHandler[U]]]


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

    @property
    def inbox_consumer(self) -> str:
        return self.consumer or self.queue.name

    async def handle(self, event: Event, delivery: Delivery) -> None:
        """Run the event's handlers in one unit of work (see the module docstring)."""
        handlers = handlers_for(self.handlers, event)
        if not handlers:
            raise DeadLetter("unexpected_event", f"{event.event_type} does not belong on {self.queue.name}")
        uow = self.unit_of_work()
        uow.delivery = delivery
        if self.own_transactions:
            for handler in handlers:
                await _run(handler, event, uow)
            return
        async with uow:
            first = await uow.claim(
                self.inbox_consumer, str(event.event_id), event_type=event.event_type, order_id=event.order_id
            )
            if not first:
                if tracing.ENABLED:
                    tracing.annotate({"spawnpoint.duplicate": True})
                if self.on_duplicate is not None:
                    await self.on_duplicate(event, uow)
                    await uow.commit()
                return
            for handler in handlers:
                await _run(handler, event, uow)
            await uow.commit()


async def _run(handler: EventHandler[U], event: Event, uow: U) -> None:
    """One handler of the table; with tracing on, in a span named after it (``project_event``,
    ``on_order_paid``), so a trace shows what each service did with the event."""
    if not tracing.ENABLED:
        await handler(event, uow)
        return
    name = getattr(handler, "__name__", None) or type(handler).__name__
    with tracing.span(name, attributes={"spawnpoint.event_type": event.event_type}):
        await handler(event, uow)
