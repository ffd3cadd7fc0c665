"""Background job: leases due stored Stripe events and hands each to the runner (woken by NOTIFY, polling as
a safety net).

It decides nothing: which handler an event needs, the Stripe call, the transaction and the event's
bookkeeping are ``service_layer.stored_events.StoredEventRunner``'s. Up to ``WEBHOOK_WORKER_CONCURRENCY``
events are applied at once; while webhooks pour into the same process (``service_layer.webhook_pressure``:
the intake goes first) only ``WEBHOOK_WORKER_BUSY_CONCURRENCY``, started at most
``WEBHOOK_WORKER_BUSY_EVENTS_PER_SECOND`` a second, so fulfilment goes on slowly instead of stopping. A
lease that is not finished (a crashed process) runs out and the event is leased again. Not a ``periodic``
job: it waits for a NOTIFY, an event handed to it or a slot to free up, not for a period.

Events the webhook stored in this same process come straight from the intake (``hand``, wired by
``EventIntake.hand_to``), already leased to this process: they are applied first, without a claim. The
database is asked for due events only when a NOTIFY said there are some, when the last claim came back full,
or once a poll interval (retries that came due, events another process stored or gave up on).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable

from spawnpoint_kit.db import asyncpg_dsn
from spawnpoint_kit.logs import get_logger
from spawnpoint_kit.notify import listen

from ..adapters.repositories import STRIPE_EVENTS_CHANNEL, ClaimedEvent
from ..service_layer.stored_events import StoredEventRunner
from ..service_layer.unit_of_work import PaymentUnitOfWork
from ..service_layer.webhook_pressure import WebhookPressure

log = get_logger(__name__)

LEASE_SECONDS = 60.0
"""How long an event claimed (or handed over) is this worker's before another may take it."""


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
        self._notified = asyncio.Event()
        """Set by the NOTIFY listener: events are due in the database."""
        self._handed: deque[ClaimedEvent] = deque()
        self._handed_signal = asyncio.Event()

    def hand(self, events: list[ClaimedEvent]) -> None:
        """Events this process's webhook just stored, leased to this process: applied next, unclaimed."""
        self._handed.extend(events)
        self._handed_signal.set()

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
            claimed = await uow.stripe_events.claim_due(limit=limit, lease_seconds=LEASE_SECONDS)
            await uow.commit()
        return claimed

    async def run(self, stop: asyncio.Event) -> None:
        listener = asyncio.create_task(listen(self._dsn, STRIPE_EVENTS_CHANNEL, self._notified, stop))
        in_flight: set[asyncio.Task[bool]] = set()
        due_in_db = True  # at start: whatever is due already
        last_look = float("-inf")
        try:
            while not stop.is_set():
                free = self._free(len(in_flight))
                events = [self._handed.popleft() for _ in range(min(free, len(self._handed)))]
                room = free - len(events)
                look = room > 0 and (due_in_db or time.monotonic() - last_look >= self._poll)
                claimed = await self.claim(room) if look else []
                if look:
                    last_look = time.monotonic()
                    due_in_db = len(claimed) == room  # a full claim: more may be due
                events += claimed
                if events:
                    self._last_start = time.monotonic()
                for event in events:
                    task = asyncio.create_task(self._runner.run(event))
                    in_flight.add(task)
                    task.add_done_callback(in_flight.discard)
                if events and not self._busy() and self._free(len(in_flight)) > 0 and (self._handed or due_in_db):
                    continue  # more is waiting and there is room for it
                if await self._wait(stop, in_flight):
                    due_in_db = True
        finally:
            if in_flight:
                await asyncio.wait(in_flight, timeout=10)
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener

    async def _wait(self, stop: asyncio.Event, in_flight: set[asyncio.Task[bool]]) -> bool:
        """Wait for a NOTIFY, an event handed over, a slot freed, a stop or the poll; True after a NOTIFY."""
        if self._handed and self._free(len(in_flight)) > 0:
            return False  # handed events are waiting and may start now
        signals = [asyncio.ensure_future(e.wait()) for e in (self._notified, self._handed_signal, stop)]
        try:
            await asyncio.wait(
                {*signals, *in_flight}, timeout=self._wait_seconds(), return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for signal in signals:
                signal.cancel()
        self._handed_signal.clear()
        notified = self._notified.is_set()
        self._notified.clear()
        return notified
