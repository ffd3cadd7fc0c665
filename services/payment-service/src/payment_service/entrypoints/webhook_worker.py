"""Background job: leases due stored Stripe events and hands each to the runner (woken by NOTIFY, polling as
a safety net).

It decides nothing: which handler an event needs, the Stripe call, the transaction and the event's
bookkeeping are ``service_layer.stored_events.StoredEventRunner``'s. Up to ``WEBHOOK_WORKER_CONCURRENCY``
events are applied at once; a lease that is not finished (a crashed process) runs out and the event is
leased again. Not a ``periodic`` job: it waits for a NOTIFY or for a slot to free up, not for a period.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from spawnpoint_kit.db import asyncpg_dsn
from spawnpoint_kit.logs import get_logger
from spawnpoint_kit.notify import listen, wait_for_wake

from ..adapters.repositories import STRIPE_EVENTS_CHANNEL, ClaimedEvent
from ..service_layer.stored_events import StoredEventRunner
from ..service_layer.unit_of_work import PaymentUnitOfWork

log = get_logger(__name__)


class WebhookWorker:
    def __init__(
        self,
        runner: StoredEventRunner,
        unit_of_work: Callable[[], PaymentUnitOfWork],
        *,
        database_url: str,
        concurrency: int,
        poll_seconds: float = 1.0,
    ) -> None:
        self._runner = runner
        self._unit_of_work = unit_of_work
        self._dsn = asyncpg_dsn(database_url)
        self._concurrency = concurrency
        self._poll = poll_seconds
        self._wake = asyncio.Event()

    async def claim(self, limit: int) -> list[ClaimedEvent]:
        """Lease up to ``limit`` due events (committed at once: the lease is what keeps others off them)."""
        uow = self._unit_of_work()
        async with uow:
            claimed = await uow.stripe_events.claim_due(limit=limit)
            await uow.commit()
        return claimed

    async def run(self, stop: asyncio.Event) -> None:
        listener = asyncio.create_task(listen(self._dsn, STRIPE_EVENTS_CHANNEL, self._wake, stop))
        in_flight: set[asyncio.Task[bool]] = set()
        try:
            while not stop.is_set():
                free = self._concurrency - len(in_flight)
                claimed = await self.claim(free) if free > 0 else []
                for event in claimed:
                    task = asyncio.create_task(self._runner.run(event))
                    in_flight.add(task)
                    task.add_done_callback(in_flight.discard)
                if free > 0 and len(claimed) == free:
                    continue  # more may be due
                await wait_for_wake(self._wake, stop, self._poll, *in_flight)
        finally:
            if in_flight:
                await asyncio.wait(in_flight, timeout=10)
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
