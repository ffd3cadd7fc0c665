"""Group commit for a batched subscription: deliveries that arrive together share one transaction.

Why: under load most of a delivery's cost was its transaction, not its handler: a session, a pooled
connection, BEGIN, the inbox claim, the outbox rows, a NOTIFY and COMMIT with its disk flush, about nine
transactions per order in status-service alone. The broker hands a consumer up to ``prefetch`` messages at
once and each runs as a task of its own; with group commit they run in one unit of work instead.

How: a delivery joins the pending list and waits. A committer task (one per subscription and process, alive
while there is work) takes everything pending, up to ``BATCH_LIMIT``, and:

- a batch of one is handed straight back: the delivery is handled alone, exactly as without batching, so a
  quiet system pays nothing and nothing ever waits for company;
- a bigger batch runs every delivery's inbox claim and handlers, in arrival order, in one unit of work, and
  commits once. Each waiting delivery then returns and is acknowledged (after the commit, as always);
- if anything in the batch raises (a handler's error, a ``DeadLetter``, a deadlock, the database gone), the
  whole transaction rolls back and every delivery of the batch is handled again alone, where the consumer
  classifies its error as it always does. A poison message fails only itself, and because nothing of the
  failed batch committed, handling the others again changes nothing but the cost.

With the subscription's ``batch_handler``, a bigger batch claims all its inbox keys in one statement and hands
its first-time events to that handler together (its duplicates go through ``on_duplicate`` one by one), so
the handler can store and read for all of them in one round trip each; a failure is handled as above.

Deliveries arriving while a batch is in flight form the next one. Log lines a handler writes inside a batch
carry that delivery's ids as they would alone.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, TypeVar

from prometheus_client import Counter, Histogram

from spawnpoint_contracts import Event

from ..logs import get_logger, log_context
from ..unit_of_work import Claim, UnitOfWork
from .delivery import Delivery

if TYPE_CHECKING:
    from .handlers import BatchHandler, Subscription

log = get_logger(__name__)

U = TypeVar("U", bound=UnitOfWork)

BATCH_LIMIT = 64
"""Most deliveries in one transaction (the prefetch bounds it too)."""

BATCH_SIZE = Histogram(
    "consumer_batch_size",
    "Deliveries handled together in one transaction (group commit)",
    ["queue"],
    buckets=(1, 2, 4, 8, 16, 32, 64),
)
BATCH_FAILURES = Counter(
    "consumer_batch_failures_total",
    "Batches rolled back and handled again one delivery at a time",
    ["queue"],
)


@dataclass
class _Waiting:
    event: Event
    delivery: Delivery
    done: asyncio.Future[bool] = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    """True once committed in a batch; False: handle it alone."""


class GroupCommit(Generic[U]):
    def __init__(self, subscription: Subscription[U]) -> None:
        self._subscription = subscription
        self._pending: list[_Waiting] = []
        self._committer: asyncio.Task[None] | None = None

    async def handled(self, event: Event, delivery: Delivery) -> bool:
        """Wait for the batch this delivery joins; True if it committed there, False if the caller must handle
        it alone (it was on its own, or its batch failed)."""
        waiting = _Waiting(event, delivery)
        self._pending.append(waiting)
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._commit_pending(), name=f"group-commit {delivery.queue}")
        return await asyncio.shield(waiting.done)

    async def _commit_pending(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[:BATCH_LIMIT], self._pending[BATCH_LIMIT:]
            BATCH_SIZE.labels(batch[0].delivery.queue).observe(len(batch))
            if len(batch) == 1:
                _settle(batch, committed=False)
                continue
            try:
                await self._commit(batch)
            except Exception as exc:
                BATCH_FAILURES.labels(batch[0].delivery.queue).inc()
                log.info("batch failed; its deliveries are handled one by one", size=len(batch), error=repr(exc)[:300])
                _settle(batch, committed=False)
            except BaseException:
                _settle(batch, committed=False)
                raise
            else:
                _settle(batch, committed=True)

    async def _commit(self, batch: list[_Waiting]) -> None:
        if self._subscription.batch_handler is not None:
            await self._commit_together(batch, self._subscription.batch_handler)
            return
        uow = self._subscription.unit_of_work()
        async with uow:
            for waiting in batch:
                with _context(waiting):
                    await self._subscription.handle_in(uow, waiting.event, waiting.delivery)
            uow.delivery = None
            await uow.commit()

    async def _commit_together(self, batch: list[_Waiting], handler: BatchHandler[U]) -> None:
        """The batch's inbox keys claimed in one statement, its duplicates through ``on_duplicate`` one by
        one, its first-time events through ``handler`` together; one commit."""
        subscription = self._subscription
        for waiting in batch:
            subscription.handlers_of(waiting.event)  # a type the table does not name fails the batch here
        uow = subscription.unit_of_work()
        async with uow:
            firsts = await uow.claim_many(
                subscription.inbox_consumer,
                [Claim(str(w.event.event_id), w.event.event_type, w.event.order_id) for w in batch],
            )
            fresh = []
            for waiting, first in zip(batch, firsts, strict=True):
                if first:
                    fresh.append(waiting.event)
                elif subscription.on_duplicate is not None:
                    with _context(waiting):
                        uow.delivery = waiting.delivery
                        await subscription.on_duplicate(waiting.event, uow)
            uow.delivery = None
            if fresh:
                await handler(fresh, uow)
            await uow.commit()


def _context(waiting: _Waiting) -> contextlib.AbstractContextManager[None]:
    """The delivery's ids on the log lines written while it is handled, as they would be alone."""
    event = waiting.event
    return log_context(
        message_id=waiting.delivery.message_id,
        order_id=event.order_id,
        event_id=event.event_id,
        correlation_id=event.correlation_id,
    )


def _settle(batch: list[_Waiting], *, committed: bool) -> None:
    for waiting in batch:
        if not waiting.done.done():
            waiting.done.set_result(committed)
