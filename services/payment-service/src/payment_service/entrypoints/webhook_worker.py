"""Background job: applies stored Stripe events (woken by NOTIFY, polling as a safety net)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import stripe
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from spawnpoint_kit.db import asyncpg_dsn
from spawnpoint_kit.logs import get_logger
from spawnpoint_kit.messaging.topology import Topology
from spawnpoint_kit.notify import listen, wait_for_wake

from ..adapters.stripe_gateway import StripeGateway
from ..service_layer import fulfilment
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
        topology: Topology,
        gateway: StripeGateway,
        *,
        database_url: str,
        concurrency: int,
        poll_seconds: float = 1.0,
    ) -> None:
        self._sessions = sessions
        self._topology = topology
        self._gateway = gateway
        self._dsn = asyncpg_dsn(database_url)
        self._concurrency = concurrency
        self._poll = poll_seconds
        self._wake = asyncio.Event()

    async def apply(self, payload: dict[str, Any]) -> None:
        event_type = payload["type"]
        session_id = payload["data"]["object"]["id"]
        try:
            checkout = await self._gateway.retrieve_checkout_session(session_id)
        except stripe.InvalidRequestError as exc:
            if exc.http_status == 404:
                raise RetryLater(f"Stripe does not know session {session_id}") from exc
            raise
        if event_type in (COMPLETED, ASYNC_SUCCEEDED):
            await fulfilment.fulfil(self._sessions, self._topology, checkout, via="webhook")
        elif event_type == ASYNC_FAILED:
            await fulfilment.mark_failed(self._sessions, self._topology, checkout)
        elif event_type == EXPIRED:
            await fulfilment.mark_expired(self._sessions, self._topology, checkout)

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
