"""Dead-letter queues at the broker level: list without consuming, replay, purge and export.

``spawnctl dlq`` is a thin command line over this module. Two kinds of dead letters land in a
``<queue>.dlq`` and both are understood:

- copies made by a consumer through its outbox (``stage_dead_letter``), whose headers carry the reason
  (``x-spawnpoint-reason``, ``-detail``, ``-queue``, ``-dead-lettered-at``);
- messages the broker dead-lettered itself (a reject, the delivery limit), whose history is the
  ``x-death`` header (newest first: queue, reason, count, time).

Listing fetches every message with ``basic.get`` and manual acknowledgement, then closes the channel, so
the broker requeues them all in their original order: nothing is consumed.

A replay follows the reference practice (messaging.md section 3): the message goes back to its
**original queue through the default exchange** (never the topic exchange, which would fan it out again
to services that already handled it), with its body, ``message_id``, ``correlation_id``, content type and
headers kept and ``x-replay-count`` (+1) and ``x-replayed-at`` added. The broker's own annotations
(``x-death``, ``x-first-death-*``, ``x-last-death-*``, ``x-delivery-count``) and ours (every
``x-spawnpoint-*`` header) are removed, so a message that fails again is annotated afresh; the first
failure time and the last reason travel on as ``x-spawnpoint-first-failed-at`` and
``x-spawnpoint-last-reason``. It is published with publisher confirms and ``mandatory`` (an unroutable
message is returned and counts as a failure), and the dead-letter copy is acknowledged **only after the
confirm**: a failed publish leaves it in the dead-letter queue. A message already replayed
``max_replays`` times is refused.
"""

from __future__ import annotations

import base64
import contextlib
import json
import uuid
from collections.abc import AsyncGenerator, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage, AbstractQueue
from aiormq.exceptions import ChannelNotFoundEntity

from .headers import (
    BROKER_ANNOTATIONS,
    DEAD_LETTER_AT,
    DEAD_LETTER_DETAIL,
    DEAD_LETTER_QUEUE,
    DEAD_LETTER_REASON,
    FIRST_FAILED_AT,
    LAST_REASON,
    OUR_PREFIX,
    REPLAY_COUNT,
    REPLAYED_AT,
)

DLQ_SUFFIX = ".dlq"


class BrokerUnreachable(Exception):
    """RabbitMQ could not be reached (wrong ``BROKER_URL``, broker down, credentials refused)."""


class QueueNotFound(Exception):
    """The queue does not exist (wrong name or namespace)."""


def dlq_name(queue: str) -> str:
    """``provisioner.order-paid`` -> ``provisioner.order-paid.dlq`` (a DLQ name is kept as it is)."""
    return queue if queue.endswith(DLQ_SUFFIX) else queue + DLQ_SUFFIX


def source_queue(dlq: str) -> str:
    return dlq[: -len(DLQ_SUFFIX)] if dlq.endswith(DLQ_SUFFIX) else dlq


def safe_url(url: str) -> str:
    """The broker URL without its password, for messages."""
    scheme, sep, rest = url.partition("://")
    if "@" not in rest:
        return url
    credentials, _, host = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{scheme}{sep}{user}:***@{host}"


async def connect(url: str, *, timeout: float = 5.0) -> AbstractConnection:
    """A plain (not robust) connection for a short-lived tool; ``BrokerUnreachable`` if it fails."""
    try:
        return await aio_pika.connect(url, timeout=timeout)
    except Exception as exc:
        raise BrokerUnreachable(f"cannot reach RabbitMQ at {safe_url(url)}: {type(exc).__name__}: {exc}") from exc


def json_safe(value: Any) -> Any:
    """AMQP header values (bytes, datetimes, decimals, nested tables) as JSON values."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def _as_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str | bytes):
        text = value.decode() if isinstance(value, bytes) else value
        with contextlib.suppress(ValueError):
            parsed = datetime.fromisoformat(text)
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def _as_int(value: Any) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, str | bytes) and str(json_safe(value)).strip().isdigit():
        return int(str(json_safe(value)).strip())
    return 0


@dataclass(frozen=True)
class Death:
    """One entry of ``x-death``: the broker dead-lettered the message from ``queue`` for ``reason``."""

    queue: str
    reason: str
    count: int
    time: datetime | None
    exchange: str
    routing_keys: tuple[str, ...]


@dataclass(frozen=True)
class DeadLetteredMessage:
    """A message in a dead-letter queue, with what an operator wants to know about it."""

    dlq: str
    position: int
    body: bytes
    headers: dict[str, Any]
    """Headers as JSON values."""
    properties: dict[str, Any]
    deaths: tuple[Death, ...]
    raw_headers: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)

    # ---- identity -------------------------------------------------------------------------------

    @property
    def message_id(self) -> str | None:
        value = self.properties.get("message_id")
        return str(value) if value else None

    def _body_json(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.body)
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    @property
    def event_id(self) -> str | None:
        data = self._body_json()
        if data and data.get("event_id"):
            return str(data["event_id"])
        return self.message_id

    @property
    def event_type(self) -> str | None:
        value = self.headers.get("event_type") or self.properties.get("type")
        if not value:
            data = self._body_json()
            value = data.get("event_type") if data else None
        return str(value) if value else None

    @property
    def order_id(self) -> str | None:
        data = self._body_json()
        return str(data["order_id"]) if data and data.get("order_id") else None

    # ---- why and when ---------------------------------------------------------------------------

    @property
    def reason(self) -> str:
        if self.headers.get(DEAD_LETTER_REASON):
            return str(self.headers[DEAD_LETTER_REASON])
        if self.deaths:
            return self.deaths[0].reason
        return str(self.headers.get("x-first-death-reason") or "unknown")

    @property
    def detail(self) -> str:
        return str(self.headers.get(DEAD_LETTER_DETAIL) or "")

    @property
    def original_queue(self) -> str:
        """Where a replay sends it: the queue that dead-lettered it."""
        if self.headers.get(DEAD_LETTER_QUEUE):
            return str(self.headers[DEAD_LETTER_QUEUE])
        if self.deaths:
            return self.deaths[0].queue
        return source_queue(self.dlq)

    @property
    def replay_count(self) -> int:
        return _as_int(self.headers.get(REPLAY_COUNT, 0))

    @property
    def death_count(self) -> int:
        """How many times it was dead-lettered: this time, and once before each replay."""
        broker = sum(d.count for d in self.deaths if d.reason != "expired")
        return max(1, broker) + self.replay_count

    def _times(self) -> list[datetime]:
        times = [d.time for d in self.deaths if d.time is not None]
        for key in (DEAD_LETTER_AT, FIRST_FAILED_AT):
            parsed = _as_datetime(self.headers.get(key))
            if parsed is not None:
                times.append(parsed)
        return times

    @property
    def first_failed_at(self) -> datetime | None:
        first = _as_datetime(self.headers.get(FIRST_FAILED_AT))
        times = self._times()
        return first or (min(times) if times else None)

    @property
    def last_failed_at(self) -> datetime | None:
        times = self._times()
        return max(times) if times else None

    def matches(self, *, event_id: str | None = None, order_id: str | None = None, reason: str | None = None) -> bool:
        if event_id is not None and event_id not in (self.event_id, self.message_id):
            return False
        if order_id is not None and _norm(order_id) != _norm(self.order_id):
            return False
        return reason is None or reason == self.reason

    # ---- output ---------------------------------------------------------------------------------

    def body_json_or_text(self) -> tuple[Any, str]:
        """The body as JSON when it is JSON, else as text, else base64; and which of the three."""
        with contextlib.suppress(ValueError):
            return json.loads(self.body), "json"
        try:
            return self.body.decode("utf-8"), "text"
        except UnicodeDecodeError:
            return base64.b64encode(self.body).decode(), "base64"

    def summary(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "event_id": self.event_id,
            "message_id": self.message_id,
            "order_id": self.order_id,
            "event_type": self.event_type,
            "reason": self.reason,
            "detail": self.detail,
            "original_queue": self.original_queue,
            "death_count": self.death_count,
            "replay_count": self.replay_count,
            "first_failed_at": _iso(self.first_failed_at),
            "last_failed_at": _iso(self.last_failed_at),
        }

    def to_json(self) -> dict[str, Any]:
        body, encoding = self.body_json_or_text()
        return {
            **self.summary(),
            "dlq": self.dlq,
            "properties": self.properties,
            "headers": self.headers,
            "x_death": [
                {
                    "queue": d.queue,
                    "reason": d.reason,
                    "count": d.count,
                    "time": _iso(d.time),
                    "exchange": d.exchange,
                    "routing_keys": list(d.routing_keys),
                }
                for d in self.deaths
            ],
            "body_encoding": encoding,
            "body": body,
        }

    # ---- replay ---------------------------------------------------------------------------------

    def replay_message(
        self, *, now: datetime | None = None, extra_headers: dict[str, Any] | None = None
    ) -> aio_pika.Message:
        """The message to publish back: the same body and properties, annotations replaced (and the
        operator's ``extra_headers``, such as ``FORCE_DELETE``)."""
        now = now or datetime.now(UTC)
        headers = {
            k: v
            for k, v in self.raw_headers.items()
            if not k.startswith(BROKER_ANNOTATIONS) and not k.startswith(OUR_PREFIX)
        }
        headers.update(extra_headers or {})
        first = self.first_failed_at
        if first is not None:
            headers[FIRST_FAILED_AT] = first.isoformat()
        headers[LAST_REASON] = self.reason
        headers[REPLAY_COUNT] = self.replay_count + 1
        headers[REPLAYED_AT] = now.isoformat()
        props = self.properties
        return aio_pika.Message(
            self.body,
            headers=headers,
            content_type=props.get("content_type"),
            content_encoding=props.get("content_encoding"),
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            priority=props.get("priority"),
            correlation_id=props.get("correlation_id"),
            message_id=props.get("message_id"),
            timestamp=_as_datetime(props.get("timestamp")),
            type=props.get("type"),
            app_id=props.get("app_id"),
        )


def _norm(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return value.strip().lower()


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _deaths(raw: Any) -> tuple[Death, ...]:
    if not isinstance(raw, list | tuple):
        return ()
    out: list[Death] = []
    for entry in raw:
        if not isinstance(entry, dict):
            continue
        keys = entry.get("routing-keys") or []
        out.append(
            Death(
                queue=str(json_safe(entry.get("queue", ""))),
                reason=str(json_safe(entry.get("reason", ""))),
                count=_as_int(entry.get("count", 1)) or 1,
                time=_as_datetime(entry.get("time")),
                exchange=str(json_safe(entry.get("exchange", ""))),
                routing_keys=tuple(str(json_safe(k)) for k in keys) if isinstance(keys, list | tuple) else (),
            )
        )
    return tuple(out)


def parse(message: AbstractIncomingMessage, *, dlq: str, position: int) -> DeadLetteredMessage:
    raw_headers = dict(message.headers or {})
    properties = {
        "message_id": message.message_id,
        "correlation_id": message.correlation_id,
        "content_type": message.content_type,
        "content_encoding": message.content_encoding,
        "type": message.type,
        "app_id": message.app_id,
        "priority": message.priority,
        "delivery_mode": int(message.delivery_mode) if message.delivery_mode is not None else None,
        "timestamp": _iso(_as_datetime(message.timestamp)),
    }
    return DeadLetteredMessage(
        dlq=dlq,
        position=position,
        body=bytes(message.body),
        headers=json_safe(raw_headers),
        properties={k: v for k, v in properties.items() if v is not None},
        deaths=_deaths(raw_headers.get("x-death")),
        raw_headers=raw_headers,
    )


class Outcome(StrEnum):
    REPLAYED = "replayed"
    WOULD_REPLAY = "would_replay"
    REFUSED = "refused"
    FAILED = "failed"


@dataclass(frozen=True)
class ReplayResult:
    message: DeadLetteredMessage
    outcome: Outcome
    target: str
    error: str = ""


@dataclass
class ReplayReport:
    results: list[ReplayResult] = field(default_factory=list)
    scanned: int = 0

    def count(self, outcome: Outcome) -> int:
        return sum(1 for r in self.results if r.outcome == outcome)


Selector = Callable[[DeadLetteredMessage], bool]


class DeadLetterQueue:
    """One ``<queue>.dlq`` on an open connection."""

    def __init__(self, connection: AbstractConnection, name: str) -> None:
        self.connection = connection
        self.name = dlq_name(name)

    async def _declare(self, channel: AbstractChannel) -> AbstractQueue:
        try:
            return await channel.declare_queue(self.name, passive=True)
        except ChannelNotFoundEntity as exc:
            raise QueueNotFound(f"queue {self.name!r} does not exist") from exc

    async def depth(self) -> int:
        channel = await self.connection.channel()
        try:
            queue = await self._declare(channel)
            return int(queue.declaration_result.message_count or 0)
        finally:
            with contextlib.suppress(Exception):
                await channel.close()

    async def peek(self, *, limit: int | None = None) -> list[DeadLetteredMessage]:
        """Every message (or the first ``limit``) without consuming: fetched unacknowledged, then requeued
        in order when the channel closes."""
        return [message async for message in self.scan(limit=limit)]

    async def scan(self, *, limit: int | None = None) -> AsyncGenerator[DeadLetteredMessage, None]:
        """The messages one at a time, without consuming (requeued in order when the scan ends, however it
        ends): a caller that stops early (``show`` found its message) or writes each as it comes
        (``export``) never holds the whole queue in memory."""
        channel = await self.connection.channel()
        try:
            queue = await self._declare(channel)
            total = int(queue.declaration_result.message_count or 0)
            wanted = total if limit is None else min(limit, total)
            for position in range(1, wanted + 1):
                message = await queue.get(no_ack=False, fail=False)
                if message is None:
                    break
                yield parse(message, dlq=self.name, position=position)
        finally:
            with contextlib.suppress(Exception):
                await channel.close()

    async def replay(
        self,
        select: Selector,
        *,
        limit: int | None = None,
        max_replays: int = 3,
        dry_run: bool = False,
        publish_timeout: float = 10.0,
        on_result: Callable[[ReplayResult], None] | None = None,
        on_scanned: Callable[[int, int], None] | None = None,
        extra_headers: dict[str, Any] | None = None,
    ) -> ReplayReport:
        """Replay the selected messages to their original queues (see the module docstring), each with the
        operator's ``extra_headers`` if given."""
        report = ReplayReport()
        consume = await self.connection.channel()
        publish = await self.connection.channel(publisher_confirms=True, on_return_raises=True)
        try:
            queue = await self._declare(consume)
            total = int(queue.declaration_result.message_count or 0)
            for position in range(1, total + 1):
                message = await queue.get(no_ack=False, fail=False)
                if message is None:
                    break
                report.scanned = position
                if on_scanned is not None:
                    on_scanned(position, total)
                dead = parse(message, dlq=self.name, position=position)
                if not select(dead):
                    continue  # left unacknowledged: requeued when the channel closes
                if limit is not None and len(report.results) >= limit:
                    continue
                result = await self._replay_one(
                    message, dead, publish, max_replays, dry_run, publish_timeout, extra_headers
                )
                report.results.append(result)
                if on_result is not None:
                    on_result(result)
        finally:
            for channel in (publish, consume):
                with contextlib.suppress(Exception):
                    await channel.close()
        return report

    async def _replay_one(
        self,
        message: AbstractIncomingMessage,
        dead: DeadLetteredMessage,
        publish: AbstractChannel,
        max_replays: int,
        dry_run: bool,
        timeout: float,
        extra_headers: dict[str, Any] | None = None,
    ) -> ReplayResult:
        target = dead.original_queue
        if dead.replay_count >= max_replays:
            return ReplayResult(dead, Outcome.REFUSED, target, f"already replayed {dead.replay_count} times")
        if dry_run:
            return ReplayResult(dead, Outcome.WOULD_REPLAY, target)
        try:
            await publish.default_exchange.publish(
                dead.replay_message(extra_headers=extra_headers), routing_key=target, mandatory=True, timeout=timeout
            )
        except Exception as exc:  # returned (unroutable), nacked, timed out, channel lost: keep the DLQ copy
            return ReplayResult(dead, Outcome.FAILED, target, f"{type(exc).__name__}: {exc}")
        await message.ack()  # only after the publisher confirm
        return ReplayResult(dead, Outcome.REPLAYED, target)

    async def purge(self, select: Selector | None = None, *, limit: int | None = None) -> int:
        """Delete every message (``select`` None) or the selected ones, at most ``limit`` (the oldest first);
        returns how many. An operator confirms a count: passing it as ``limit`` deletes exactly the messages
        that were counted, never one that arrived after the count was shown (messages arrive at the tail)."""
        channel = await self.connection.channel()
        try:
            queue = await self._declare(channel)
            if select is None and limit is None:
                result = await queue.purge()
                return int(getattr(result, "message_count", 0) or 0)
            total = int(queue.declaration_result.message_count or 0)
            deleted = 0
            for position in range(1, total + 1):
                if limit is not None and deleted >= limit:
                    break
                message = await queue.get(no_ack=False, fail=False)
                if message is None:
                    break
                if select is None or select(parse(message, dlq=self.name, position=position)):
                    await message.ack()
                    deleted += 1
            return deleted
        finally:
            with contextlib.suppress(Exception):
                await channel.close()


def select_by(
    *, event_id: str | None = None, order_id: str | None = None, reason: str | None = None, everything: bool = False
) -> Selector:
    """A selector for the command line's filters; ``everything`` selects all."""

    def selector(message: DeadLetteredMessage) -> bool:
        if everything and event_id is None and order_id is None and reason is None:
            return True
        return message.matches(event_id=event_id, order_id=order_id, reason=reason)

    return selector


def export_lines(messages: Iterable[DeadLetteredMessage]) -> Iterable[str]:
    """JSON lines, one message each."""
    for message in messages:
        yield json.dumps(message.to_json(), sort_keys=True, default=str)
