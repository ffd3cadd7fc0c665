"""The outbox relay: the only publisher. Safe to run in several processes at once.

Each round claims a batch of due rows with ``FOR UPDATE SKIP LOCKED`` (so two relays never take the same
row), publishes them concurrently with publisher confirms, ``mandatory`` (an unroutable message comes
back as a return and counts as a failure), persistent delivery and ``message_id`` = the event id, then
marks the confirmed ones published in the same transaction. A row that failed gets ``last_error`` and
an exponential, jittered ``available_at`` (the exponent capped) so a broken route cannot starve the
others. Rows are isolated from each other: the confirmed ones are marked first, and each failed row is
marked in a savepoint of its own, so one row's failure (to publish, or even to be marked) never rolls
back or delays the rest of the batch.

A crash between the confirm and the commit publishes the row again on the next round: consumers are
idempotent, so at-least-once is enough. A LISTEN connection wakes the relay when a transaction that
staged rows commits; a poll interval covers lost notifications and restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from faststream.rabbit import RabbitBroker, RabbitExchange
from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ..db import asyncpg_dsn
from ..logs import get_logger
from ..notify import listen, sleep_or, wait_for_wake
from .headers import ORIGINAL_MESSAGE_ID
from .outbox import NOTIFY_CHANNEL

log = get_logger(__name__)

PUBLISHED = Counter("outbox_published_total", "Outbox rows published and confirmed", ["message_type"])
FAILED = Counter("outbox_publish_failures_total", "Outbox publish attempts that failed", ["message_type"])
BACKLOG = Gauge("outbox_backlog", "Outbox rows not yet published")
OLDEST_AGE = Gauge("outbox_oldest_unpublished_age_seconds", "Age of the oldest unpublished outbox row")
STAGE_TO_CONFIRM = Histogram(
    "outbox_commit_to_confirm_seconds",
    "Time from staging a row to its publisher confirm",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)

_CLAIM = sa.text(
    """
    SELECT id, exchange, routing_key, message_type, body, headers, correlation_id, created_at, attempts
    FROM outbox
    WHERE published_at IS NULL AND available_at <= now()
    ORDER BY created_at
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
    """
)
_MARK_PUBLISHED = sa.text("UPDATE outbox SET published_at = now(), last_error = NULL WHERE id = ANY(:ids)")
_MARK_FAILED = sa.text(
    "UPDATE outbox SET attempts = attempts + 1, last_error = :error, available_at = :available_at WHERE id = :id"
)
_STATS = sa.text("SELECT count(*), extract(epoch FROM now() - min(created_at)) FROM outbox WHERE published_at IS NULL")
_PRUNE = sa.text("DELETE FROM outbox WHERE published_at IS NOT NULL AND published_at < :before")


def backoff_seconds(attempts: int, max_backoff: float) -> float:
    """Seconds before a row that failed ``attempts`` times before is due again: exponential from 0.5 s,
    capped at ``max_backoff``, jittered down to half. The exponent is capped too (``2 ** 1024`` is an
    OverflowError for a float, and a row that failed that often must not take the batch down with it)."""
    return min(max_backoff, 0.5 * 2.0 ** min(max(attempts, 0), 30)) * random.uniform(0.5, 1.0)


def error_text(error: BaseException) -> str:
    """The error as the row's ``last_error``: bounded, and without NUL (PostgreSQL text refuses it)."""
    return f"{type(error).__name__}: {error}".replace("\x00", "\\0")[:2000]


@dataclass(frozen=True)
class RelayStats:
    backlog: int
    oldest_age_seconds: float


class OutboxRelay:
    def __init__(
        self,
        engine: AsyncEngine,
        broker: RabbitBroker,
        *,
        database_url: str,
        batch_size: int = 200,
        poll_seconds: float = 1.0,
        max_backoff_seconds: float = 10.0,
        publish_timeout_seconds: float = 10.0,
        retention: timedelta = timedelta(days=3),
    ) -> None:
        self._engine = engine
        self._broker = broker
        self._dsn = asyncpg_dsn(database_url)
        self._batch = batch_size
        self._poll = poll_seconds
        self._max_backoff = max_backoff_seconds
        self._publish_timeout = publish_timeout_seconds
        self._retention = retention
        self._wake = asyncio.Event()
        self._exchanges: dict[str, RabbitExchange] = {}

    def wake(self) -> None:
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Relay until ``stop`` is set; finishes the batch in hand before returning."""
        listener = asyncio.create_task(listen(self._dsn, NOTIFY_CHANNEL, self._wake, stop), name="outbox-listen")
        last_housekeeping = 0.0
        try:
            while not stop.is_set():
                try:
                    published = await self.drain_once()
                except Exception as exc:  # keep relaying whatever happened to one round
                    log.warning("outbox round failed", error=repr(exc))
                    published = 0
                    await sleep_or(stop, self._max_backoff / 4)
                if time.monotonic() - last_housekeeping > 5:
                    last_housekeeping = time.monotonic()
                    with contextlib.suppress(Exception):
                        await self._housekeeping()
                if published >= self._batch:
                    continue
                await wait_for_wake(self._wake, stop, self._poll)
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener

    async def drain_once(self) -> int:
        """Publish one batch of due rows; returns how many were confirmed."""
        async with self._engine.begin() as conn:
            rows = (await conn.execute(_CLAIM, {"limit": self._batch})).mappings().all()
            if not rows:
                return 0
            results = await asyncio.gather(*(self._publish(row) for row in rows), return_exceptions=True)
            ok: list[uuid.UUID] = []
            failed: list[tuple[Any, BaseException]] = []
            now = datetime.now(UTC)
            for row, result in zip(rows, results, strict=True):
                if isinstance(result, BaseException):
                    failed.append((row, result))
                else:
                    ok.append(row["id"])
                    PUBLISHED.labels(row["message_type"]).inc()
                    STAGE_TO_CONFIRM.observe(max(0.0, (now - row["created_at"]).total_seconds()))
            if ok:
                await conn.execute(_MARK_PUBLISHED, {"ids": ok})
            for row, error in failed:
                await self._mark_failed(conn, row, error, now)
            return len(ok)

    async def _mark_failed(self, conn: AsyncConnection, row: Any, error: BaseException, now: datetime) -> None:
        """Record one row's failure in a savepoint of its own: if even that fails, the row is simply due
        again next round, and the other rows' marks stand."""
        FAILED.labels(row["message_type"]).inc()
        log.warning(
            "outbox publish failed",
            message_id=str(row["id"]),
            routing_key=row["routing_key"],
            attempts=row["attempts"] + 1,
            error=repr(error)[:500],
        )
        delay = backoff_seconds(row["attempts"], self._max_backoff)
        try:
            async with conn.begin_nested():
                await conn.execute(
                    _MARK_FAILED,
                    {
                        "id": row["id"],
                        "error": error_text(error),
                        "available_at": now + timedelta(seconds=delay),
                    },
                )
        except Exception as exc:
            log.error("could not record an outbox row's failure", message_id=str(row["id"]), error=repr(exc)[:500])

    async def _publish(self, row: Any) -> None:
        headers: dict[str, Any] = dict(row["headers"] or {})
        message_id = str(headers.get(ORIGINAL_MESSAGE_ID) or row["id"])
        exchange_name: str = row["exchange"]
        await self._broker.publish(
            bytes(row["body"]),
            exchange=self._exchange(exchange_name) if exchange_name else None,
            routing_key=row["routing_key"],
            mandatory=True,
            persist=True,
            message_id=message_id,
            correlation_id=row["correlation_id"],
            headers=headers,
            content_type="application/json",
            message_type=row["message_type"],
            timestamp=datetime.now(UTC),
            timeout=self._publish_timeout,
        )

    def _exchange(self, name: str) -> RabbitExchange:
        # declare=False: publish with a passive lookup; topology is declared by ``Topology.declare``.
        if name not in self._exchanges:
            self._exchanges[name] = RabbitExchange(name, declare=False)
        return self._exchanges[name]

    async def stats(self) -> RelayStats:
        async with self._engine.connect() as conn:
            count, age = (await conn.execute(_STATS)).one()
        return RelayStats(backlog=int(count), oldest_age_seconds=float(age or 0.0))

    async def _housekeeping(self) -> None:
        stats = await self.stats()
        BACKLOG.set(stats.backlog)
        OLDEST_AGE.set(stats.oldest_age_seconds)
        async with self._engine.begin() as conn:
            await conn.execute(_PRUNE, {"before": datetime.now(UTC) - self._retention})
