"""Background job: leases due stored Stripe events and hands each to the runner (woken by NOTIFY, polling as
a safety net).

It decides nothing: which handler an event needs, the Stripe call, the transaction and the event's
bookkeeping are ``service_layer.stored_events.StoredEventRunner``'s. Up to ``WEBHOOK_WORKER_CONCURRENCY``
events are applied at once; while webhooks pour into the same process (``service_layer.webhook_pressure``:
the intake goes first) only ``WEBHOOK_WORKER_BUSY_CONCURRENCY``, started at most
``WEBHOOK_WORKER_BUSY_EVENTS_PER_SECOND`` a second, so fulfilment goes on slowly instead of stopping. A
lease that is not finished (a crashed process) runs out and the event is leased again. Not a ``periodic``
job: it waits for a NOTIFY or for a slot to free up, not for a period.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

from spawnpoint_kit.db import asyncpg_dsn
from spawnpoint_kit.logs import get_logger
from spawnpoint_kit.notify import listen, wait_for_wake

from ..adapters.repositories import STRIPE_EVENTS_CHANNEL, ClaimedEvent
from ..service_layer.stored_events import StoredEventRunner
from ..service_layer.unit_of_work import PaymentUnitOfWork
from ..service_layer.webhook_pressure import WebhookPressure

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
        pressure: WebhookPressure | None = None,
        busy_concurrency: int = 1,
        busy_events_per_second: float = 5.0,
    ) -> None:
        self._runner = runner
        self._unit_of_work = unit_of_work
        self._dsn = asyncpg_dsn(database_url)
        self._concurrency = concurrency
        self._poll = poll_seconds
        self._pressure = pressure
        self._busy_concurrency = max(1, min(busy_concurrency, concurrency))
        self._busy_interval = 1.0 / busy_events_per_second
        self._last_start = float("-inf")
        self._wake = asyncio.Event()

    def _busy(self) -> bool:
        return self._pressure is not None and self._pressure.busy()

    def _free(self, in_flight: int) -> int:
        """How many more events may start now: up to the concurrency; during a flood of webhooks on this
        process, up to the busy concurrency and no sooner than ``busy_interval`` after the last start (what
        a fulfilment sets off downstream, OrderPaid and the provisioning, costs the machine far more than
        the fulfilment itself)."""
        if not self._busy():
            return self._concurrency - in_flight
        if time.monotonic() - self._last_start < self._busy_interval:
            return 0
        return min(1, self._busy_concurrency - in_flight)

    def _wait_seconds(self) -> float:
        """How long to wait for a wake-up: the poll, or less during a flood (the next paced start, or the
        flood's end, when the worker takes its full share at once instead of at the next poll)."""
        if not self._busy() or self._pressure is None:
            return self._poll
        waits = [self._poll, self._pressure.quiet_in()]
        next_start = self._last_start + self._busy_interval - time.monotonic()
        if next_start > 0:
            waits.append(next_start)
        return max(0.01, min(waits))

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
                free = self._free(len(in_flight))
                claimed = await self.claim(free) if free > 0 else []
                if claimed:
                    self._last_start = time.monotonic()
                for event in claimed:
                    task = asyncio.create_task(self._runner.run(event))
                    in_flight.add(task)
                    task.add_done_callback(in_flight.discard)
                if free > 0 and len(claimed) == free and not self._busy():
                    continue  # more may be due
                await wait_for_wake(self._wake, stop, self._wait_seconds(), *in_flight)
        finally:
            if in_flight:
                await asyncio.wait(in_flight, timeout=10)
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
