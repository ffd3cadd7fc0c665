"""Background job: applies stored Stripe events (woken by NOTIFY, polling as a safety net).

Each event's session is re-retrieved from Stripe (the event snapshot is never trusted for the current
state) and handed to the one fulfilment: ``completed`` and ``async_payment_succeeded`` fulfil (a
delayed method makes the order ``payment_processing``), ``async_payment_failed`` fails the payment
unless Stripe now says it is paid, ``expired`` expires the order unless it was paid or has another live
session. The event row is marked processed in the transaction that applies it.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from spawnpoint_kit.db import asyncpg_dsn
from spawnpoint_kit.logs import get_logger
from spawnpoint_kit.notify import listen, wait_for_wake

from ..adapters.stripe_gateway import is_not_found
from ..service_layer.fulfilment import Fulfilment
from ..service_layer.webhooks import (
    ASYNC_FAILED,
    ASYNC_SUCCEEDED,
    COMPLETED,
    EXPIRED,
    NOTIFY_CHANNEL,
    RetryLater,
    claim_pending,
    process_one,
)

log = get_logger(__name__)


class WebhookWorker:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        fulfilment: Fulfilment,
        *,
        database_url: str,
        concurrency: int,
        poll_seconds: float = 1.0,
    ) -> None:
        self._sessions = sessions
        self._fulfilment = fulfilment
        self._dsn = asyncpg_dsn(database_url)
        self._concurrency = concurrency
        self._poll = poll_seconds
        self._wake = asyncio.Event()

    async def apply(self, payload: dict[str, Any], event_id: str) -> str:
        """Apply one stored event; returns the outcome (raises ``RetryLater`` to keep it for later)."""
        event_type = payload["type"]
        session_id = payload["data"]["object"]["id"]
        try:
            checkout = await self._fulfilment.retrieve(session_id)
        except Exception as exc:
            if is_not_found(exc):
                raise RetryLater(f"Stripe does not know session {session_id}") from exc
            raise
        paid_now = checkout.status == "complete" and checkout.payment_status == "paid"
        if event_type in (COMPLETED, ASYNC_SUCCEEDED) or paid_now:
            return (await self._fulfilment.apply(checkout, via="webhook", event_id=event_id)).outcome
        if event_type == ASYNC_FAILED:
            return await self._fulfilment.mark_failed(checkout, event_id=event_id)
        if event_type == EXPIRED:
            return await self._fulfilment.mark_expired(checkout, event_id=event_id)
        raise RetryLater(f"unexpected stored event type {event_type}")

    async def run(self, stop: asyncio.Event) -> None:
        listener = asyncio.create_task(listen(self._dsn, NOTIFY_CHANNEL, self._wake, stop))
        in_flight: set[asyncio.Task[bool]] = set()
        try:
            while not stop.is_set():
                free = self._concurrency - len(in_flight)
                claimed = await claim_pending(self._sessions, limit=free) if free > 0 else []
                for item in claimed:
                    task = asyncio.create_task(process_one(self._sessions, item, self.apply))
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
