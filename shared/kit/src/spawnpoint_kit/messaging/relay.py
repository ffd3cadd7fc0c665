"""The outbox relay: the only publisher. Safe to run in several processes at once.

Each round claims a batch of due rows with ``FOR UPDATE SKIP LOCKED`` (so two relays never take the same
row), publishes them concurrently with publisher confirms, ``mandatory`` (an unroutable message comes
back as a return and counts as a failure), persistent delivery and ``message_id`` = the event id, then
marks the confirmed ones published in the same transaction. A row that failed gets ``last_error`` and
an exponential, jittered ``available_at`` (the exponent capped) so a broken route cannot starve the
others. Rows are isolated from each other: the confirmed ones are marked first, and each failed row is
marked in a savepoint of its own, so one row's failure (to publish, or even to be marked) never rolls
back or delays the rest of the batch.

Two kinds of failure are told apart. The broker being unreachable or refusing (a connection or channel
error, a confirm that timed out, a ``Basic.Nack``) is nobody's row's fault: the rows are left as they are
and the next round tries again, however long the outage lasts. A nack is the broker's answer about itself,
never about the message: a quorum queue nacks when it has no leader it can reach or when it is full
(``x-overflow=reject-publish``). A row that fails *on its own* (unroutable, an exchange that does not exist,
an encoding error) counts an attempt; after ``park_after_attempts`` of them it is parked: set aside with its
``last_error``, counted (``outbox_parked_total``, the ``outbox_parked_rows`` gauge: alert on it) and left for an
operator, who can see and retry it (``GET /operator/outbox``, ``spawnctl outbox``). A parked row never
delays the others. A row sent straight to a queue (a delayed retry, a dead-letter copy) that comes back
``NO_ROUTE`` is asked about once more: if that queue exists but its node is down (a classic queue lives on
one node), the broker is what is missing, and no attempt is counted either.

The relay publishes on a channel of its own, opened on the broker's connection (``PublishingChannel``), not
on the channel the consumers share: after a round in which the broker refused or timed out, that channel is
closed and the next round opens a fresh one. On RabbitMQ 3.10 a channel whose first publish to a quorum queue
came while the queue's record still named a leader on a node that is down keeps that stale leader and has
every later publish to the queue nacked until the node returns (``rabbit_fifo_client``), while a new channel
reads the queue's current leader and is confirmed (``make cluster``, docs/operations.md). Closing the
channel between rounds (never with a publish in flight) costs one channel open per refused round.

With tracing on, a row staged with a ``traceparent`` is published in a PRODUCER span that continues the
staging request's trace (``tracing.publishing``); rows without one go out as they are.

Under load the relay lingers: after a round that published something it waits ``linger_seconds`` (5 ms
by default) before the next, so the rows committed meanwhile share one round's claim, mark and commit instead
of a round per committed transaction; after an idle round nothing waits, so a lone row is published at once.

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
from typing import Any, Protocol

import aio_pika
import sqlalchemy as sa
from aio_pika.abc import AbstractChannel, AbstractConnection
from aiormq.exceptions import (
    AMQPChannelError,
    AMQPConnectionError,
    ChannelAccessRefused,
    ChannelInvalidStateError,
    ChannelNotFoundEntity,
    ChannelPreconditionFailed,
    DeliveryError,
    PublishError,
)
from faststream.exceptions import IncorrectState
from faststream.rabbit import RabbitBroker
from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from .. import tracing
from ..db import asyncpg_dsn
from ..logs import get_logger
from ..notify import listen, sleep_or, wait_for_wake
from .headers import ORIGINAL_MESSAGE_ID
from .outbox import NOTIFY_CHANNEL

log = get_logger(__name__)

PUBLISHED = Counter("outbox_published_total", "Outbox rows published and confirmed", ["message_type"])
FAILED = Counter("outbox_publish_failures_total", "Outbox publish attempts that failed", ["message_type"])
BACKLOG = Gauge("outbox_backlog", "Outbox rows not yet published (parked ones excepted)")
PARKED = Counter("outbox_parked_total", "Outbox rows parked after failing on their own too often", ["message_type"])
PARKED_NOW = Gauge("outbox_parked_rows", "Outbox rows parked, waiting for an operator (spawnctl outbox)")
BROKER_DOWN_ROUNDS = Counter("outbox_broker_unavailable_total", "Publish attempts that met an unreachable broker")
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
    WHERE published_at IS NULL AND parked_at IS NULL AND available_at <= now()
    ORDER BY created_at
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
    """
)
_MARK_PUBLISHED = sa.text("UPDATE outbox SET published_at = now(), last_error = NULL WHERE id = ANY(:ids)")
_MARK_FAILED = sa.text(
    "UPDATE outbox SET attempts = attempts + 1, last_error = :error, available_at = :available_at, "
    "parked_at = CASE WHEN attempts + 1 >= :park_after THEN now() ELSE NULL END WHERE id = :id "
    "RETURNING parked_at IS NOT NULL AS parked"
)
_STATS = sa.text(
    "SELECT count(*) FILTER (WHERE parked_at IS NULL), "
    "extract(epoch FROM now() - min(created_at) FILTER (WHERE parked_at IS NULL)), "
    "count(*) FILTER (WHERE parked_at IS NOT NULL) FROM outbox WHERE published_at IS NULL"
)
_PRUNE = sa.text("DELETE FROM outbox WHERE published_at IS NOT NULL AND published_at < :before")


def backoff_seconds(attempts: int, max_backoff: float) -> float:
    """Seconds before a row that failed ``attempts`` times before is due again: exponential from 0.5 s,
    capped at ``max_backoff``, jittered down to half. The exponent is capped too (``2 ** 1024`` is an
    OverflowError for a float, and a row that failed that often must not take the batch down with it)."""
    return min(max_backoff, 0.5 * 2.0 ** min(max(attempts, 0), 30)) * random.uniform(0.5, 1.0)


def error_text(error: BaseException) -> str:
    """The error as the row's ``last_error``: bounded, and without NUL (PostgreSQL text refuses it)."""
    return f"{type(error).__name__}: {error}".replace("\x00", "\\0")[:2000]


class BrokerUnavailable(Exception):
    """No channel could be opened to publish on (the connection is down or being restored)."""


_ROW_CHANNEL_ERRORS = (ChannelNotFoundEntity, ChannelAccessRefused, ChannelPreconditionFailed)
"""Channel closes in which the broker names something of the row's (its exchange missing, not permitted)."""


def _causes(error: BaseException) -> list[BaseException]:
    found: list[BaseException] = []
    cause: BaseException | None = error
    while cause is not None and cause not in found:
        found.append(cause)
        cause = cause.__cause__ or cause.__context__
    return found


def refused_by_broker(error: BaseException) -> bool:
    """A ``Basic.Nack``: the broker (a quorum queue without a reachable leader, or full) refused the message.
    A return (``PublishError``, also a ``DeliveryError``) is not one: that is about the row's route."""
    return any(isinstance(c, DeliveryError) and not isinstance(c, PublishError) for c in _causes(error))


def broker_unavailable(error: BaseException) -> bool:
    """The broker could not be reached, lost the channel, did not confirm in time or refused (a nack): no
    row's fault, no attempt counted."""
    for cause in _causes(error):
        if isinstance(cause, _ROW_CHANNEL_ERRORS):
            return False
        if isinstance(
            cause,
            AMQPConnectionError
            | AMQPChannelError
            | ChannelInvalidStateError
            | TimeoutError
            | OSError
            | IncorrectState
            | BrokerUnavailable,
        ):
            return True
        if refused_by_broker(cause):
            return True
    return False


def returned_no_route(error: BaseException) -> bool:
    """The broker returned the message as unroutable (``mandatory``)."""
    return any(isinstance(c, PublishError) and "NO_ROUTE" in str(c) for c in _causes(error))


class Publisher(Protocol):
    """What the relay publishes through: ``PublishingChannel`` here, a stand-in in unit tests."""

    async def publish(
        self,
        body: bytes,
        *,
        exchange: str,
        routing_key: str,
        message_id: str,
        correlation_id: str | None,
        headers: dict[str, Any],
        message_type: str,
        timeout: float,
    ) -> None: ...


class PublishingChannel:
    """The relay's own channel on the broker's (robust) connection: publisher confirms, returns raised,
    persistent messages. Replaced by ``replace`` after a refusal (see the module's docstring), and never the
    consumers' channel, so a publish the broker answers with a channel error never touches a delivery."""

    def __init__(self, broker: RabbitBroker) -> None:
        self._broker = broker
        self._connection: AbstractConnection | None = None
        self._channel: AbstractChannel | None = None
        self._lock = asyncio.Lock()
        self.opened = 0
        """Channels opened so far (the first one and every replacement)."""

    async def _connected(self) -> AbstractConnection:
        """The broker's connection, asked for once: it is robust (restores itself), and once it is closed the
        broker was stopped, which must not be undone by connecting again from here."""
        if self._connection is None:
            self._connection = await self._broker.connect()
        if self._connection.is_closed:
            raise BrokerUnavailable("the broker's connection is closed (the service is stopping)")
        return self._connection

    async def _current(self) -> AbstractChannel:
        async with self._lock:
            if self._channel is None or self._channel.is_closed:
                try:
                    connection = await self._connected()
                    self._channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
                except Exception as exc:  # opening a channel is never a row's fault
                    raise BrokerUnavailable(f"no channel to publish on: {exc!r}") from exc
                self.opened += 1
            return self._channel

    async def publish(
        self,
        body: bytes,
        *,
        exchange: str,
        routing_key: str,
        message_id: str,
        correlation_id: str | None,
        headers: dict[str, Any],
        message_type: str,
        timeout: float,
    ) -> None:
        channel = await self._current()
        target = await channel.get_exchange(exchange, ensure=False) if exchange else channel.default_exchange
        message = aio_pika.Message(
            body,
            headers=headers,
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=message_id,
            correlation_id=correlation_id or str(uuid.uuid4()),
            type=message_type,
            timestamp=datetime.now(UTC),
            app_id=self._broker.config.app_id,
        )
        await target.publish(message, routing_key=routing_key, mandatory=True, timeout=timeout)

    async def replace(self) -> None:
        """Close the channel; the next publish opens a new one, with no queue state from this one."""
        async with self._lock:
            channel, self._channel = self._channel, None
        if channel is not None and not channel.is_closed:
            with contextlib.suppress(Exception):
                await channel.close()

    async def queue_down(self, queue: str) -> bool:
        """Whether ``queue`` exists but cannot take a message now (its home node is down), asked on a
        short-lived channel of its own (a passive declare of a missing queue closes the channel)."""
        try:
            channel = await (await self._connected()).channel(publisher_confirms=False)
        except Exception:
            return False
        try:
            await channel.declare_queue(queue, passive=True)
        except ChannelNotFoundEntity as exc:
            # ``NOT_FOUND - home node 'rabbit@x' of durable queue 'q' in vhost '/' is down or inaccessible``;
            # a queue that does not exist at all says ``no queue 'q' in vhost '/'``.
            return "home node" in str(exc)
        except Exception:
            return False
        else:
            return True  # it answers now: the return was the moment's (its node was just coming back)
        finally:
            if not channel.is_closed:
                with contextlib.suppress(Exception):
                    await channel.close()


@dataclass(frozen=True)
class RelayStats:
    backlog: int
    oldest_age_seconds: float
    parked: int = 0


class OutboxRelay:
    def __init__(
        self,
        engine: AsyncEngine,
        broker: RabbitBroker | Publisher,
        *,
        database_url: str,
        batch_size: int = 200,
        poll_seconds: float = 1.0,
        linger_seconds: float = 0.0,
        max_backoff_seconds: float = 10.0,
        publish_timeout_seconds: float = 10.0,
        retention: timedelta = timedelta(days=3),
        park_after_attempts: int = 50,
    ) -> None:
        self._engine = engine
        # A RabbitBroker gets a channel of the relay's own on its connection; anything else (a unit test's
        # stand-in) is published through as it is.
        self._publisher: Publisher = PublishingChannel(broker) if isinstance(broker, RabbitBroker) else broker
        self._dsn = asyncpg_dsn(database_url)
        self._batch = batch_size
        self._poll = poll_seconds
        self._linger = linger_seconds
        self._max_backoff = max_backoff_seconds
        self._publish_timeout = publish_timeout_seconds
        self._retention = retention
        self._park_after = park_after_attempts
        self._wake = asyncio.Event()

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
                if published and self._linger:
                    # Busy: let the rows committed in the next few milliseconds go in one round (one claim,
                    # one mark, one commit) instead of one round per commit. Idle: the next row goes at once.
                    await sleep_or(stop, self._linger)
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
            down_queues: dict[str, bool] = {}
            for row, error in failed:
                await self._mark_failed(conn, row, error, now, await self._queue_down(row, error, down_queues))
            if any(broker_unavailable(error) for _, error in failed):
                await self._replace_channel(failed)
            return len(ok)

    async def _queue_down(self, row: Any, error: BaseException, asked: dict[str, bool]) -> bool:
        """Whether a row sent straight to a queue was returned because that queue's node is down (asked once
        per queue and round)."""
        queue_down = getattr(self._publisher, "queue_down", None)
        if row["exchange"] or queue_down is None or not returned_no_route(error):
            return False
        queue: str = row["routing_key"]
        if queue not in asked:
            asked[queue] = bool(await queue_down(queue))
        return asked[queue]

    async def _replace_channel(self, failed: list[tuple[Any, BaseException]]) -> None:
        """After a refusal, a timeout or a lost channel, publish on a new channel from the next round on (the
        publishes of this round are all settled: nothing is in flight on the old one)."""
        replace = getattr(self._publisher, "replace", None)
        if replace is None:
            return
        refused = sum(1 for _, error in failed if refused_by_broker(error))
        if refused:
            log.warning(
                "the broker refused outbox publishes (nack); publishing on a new channel",
                refused=refused,
                error=repr(next(e for _, e in failed if refused_by_broker(e)))[:300],
            )
        await replace()

    async def _mark_failed(
        self, conn: AsyncConnection, row: Any, error: BaseException, now: datetime, queue_down: bool = False
    ) -> None:
        """Record one row's failure in a savepoint of its own: if even that fails, the row is simply due
        again next round, and the other rows' marks stand. A broker outage or refusal, or a return from a
        queue whose node is down (``queue_down``), is recorded nowhere: the row is tried again next round,
        its attempts untouched."""
        FAILED.labels(row["message_type"]).inc()
        if queue_down or broker_unavailable(error):
            BROKER_DOWN_ROUNDS.inc()
            log.info(
                "outbox publish waits for the broker",
                message_id=str(row["id"]),
                routing_key=row["routing_key"],
                error=repr(error)[:300],
            )
            return
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
                marked = await conn.execute(
                    _MARK_FAILED,
                    {
                        "id": row["id"],
                        "error": error_text(error),
                        "available_at": now + timedelta(seconds=delay),
                        "park_after": self._park_after,
                    },
                )
                if marked.scalar():
                    PARKED.labels(row["message_type"]).inc()
                    log.error(
                        "outbox row parked after failing on its own; an operator must look at it",
                        message_id=str(row["id"]),
                        message_type=row["message_type"],
                        routing_key=row["routing_key"],
                        attempts=row["attempts"] + 1,
                        error=error_text(error)[:500],
                    )
        except Exception as exc:
            log.error("could not record an outbox row's failure", message_id=str(row["id"]), error=repr(exc)[:500])

    async def _publish(self, row: Any) -> None:
        headers: dict[str, Any] = dict(row["headers"] or {})
        message_id = str(headers.get(ORIGINAL_MESSAGE_ID) or row["id"])
        if tracing.ENABLED and tracing.TRACEPARENT in headers:
            # The trace of the request or delivery that staged the row goes on: a PRODUCER span, child of
            # the stored context, whose own context is what the message carries.
            with tracing.publishing(
                headers, exchange=row["exchange"], routing_key=row["routing_key"], message_id=message_id
            ):
                await self._send(row, headers, message_id)
            return
        await self._send(row, headers, message_id)

    async def _send(self, row: Any, headers: dict[str, Any], message_id: str) -> None:
        # The exchange by name only (no passive declare per publish): the topology is declared by
        # ``Topology.declare``; "" is the default exchange (straight to the queue named by the routing key).
        await self._publisher.publish(
            bytes(row["body"]),
            exchange=row["exchange"] or "",
            routing_key=row["routing_key"],
            message_id=message_id,
            correlation_id=row["correlation_id"],
            headers=headers,
            message_type=row["message_type"],
            timeout=self._publish_timeout,
        )

    async def stats(self) -> RelayStats:
        async with self._engine.connect() as conn:
            count, age, parked = (await conn.execute(_STATS)).one()
        return RelayStats(backlog=int(count), oldest_age_seconds=float(age or 0.0), parked=int(parked))

    async def _housekeeping(self) -> None:
        stats = await self.stats()
        BACKLOG.set(stats.backlog)
        OLDEST_AGE.set(stats.oldest_age_seconds)
        PARKED_NOW.set(stats.parked)
        async with self._engine.begin() as conn:
            await conn.execute(_PRUNE, {"before": datetime.now(UTC) - self._retention})
