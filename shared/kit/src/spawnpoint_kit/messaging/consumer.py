"""How every service consumes: parse, deduplicate, handle, and classify what went wrong.

``subscribe`` registers a FastStream subscriber that hands each handler a parsed ``Event`` and the
``Delivery`` it came in. Raw bytes are decoded here, not by FastStream, so that a body that is not a
valid event is dead-lettered with the parse error as its reason instead of crashing or looping:

- malformed or unknown message  -> copied to ``<queue>.dlq`` through the outbox with
  ``x-spawnpoint-reason: malformed_message`` and the error, then acknowledged;
- ``DeadLetter`` raised by a handler -> the same, with the handler's reason;
- any other exception -> logged, then ``reject(requeue=True)`` after a short backoff. A reject counts
  toward the queue's ``x-delivery-limit`` on every RabbitMQ version; past it, the broker dead-letters the
  message (``x-death`` reason ``delivery_limit``). Nothing loops for ever, nothing is dropped.

Handlers run their own unit of work: ``inbox.claim`` first, then effects and ``stage_event`` in the same
transaction, then commit. The message is acknowledged only after the handler returns.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aio_pika import IncomingMessage
from faststream.exceptions import RejectMessage
from faststream.message import StreamMessage
from faststream.rabbit import RabbitBroker
from prometheus_client import Counter, Histogram
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from spawnpoint_contracts import Event, parse_event

from ..logs import get_logger, log_context
from . import inbox
from .outbox import stage_message
from .topology import QueueSpec, Topology

log = get_logger(__name__)

CONSUMED = Counter("messages_consumed_total", "Messages handled", ["queue", "event_type", "outcome"])
HANDLE_SECONDS = Histogram(
    "message_handle_seconds",
    "Time to handle one message",
    ["queue"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)

DEAD_LETTER_REASON = "x-spawnpoint-reason"
DEAD_LETTER_DETAIL = "x-spawnpoint-detail"
DEAD_LETTER_QUEUE = "x-spawnpoint-queue"
DEAD_LETTER_AT = "x-spawnpoint-dead-lettered-at"
DEAD_LETTER_ROUTING_KEY = "x-spawnpoint-routing-key"
REPLAY_COUNT = "x-replay-count"


class DeadLetter(Exception):
    """A message that can never be handled as it is: dead-letter it now, with a reason."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Delivery:
    """One delivery of a message, as the handler needs to see it."""

    queue: str
    body: bytes
    headers: dict[str, Any]
    message_id: str | None
    correlation_id: str | None
    routing_key: str
    redelivered: bool

    @property
    def delivery_count(self) -> int:
        """How many times the broker delivered this message before (quorum queues count them)."""
        value = self.headers.get("x-delivery-count", 0)
        return int(value) if isinstance(value, int | str) and str(value).isdigit() else 0

    @property
    def replay_count(self) -> int:
        value = self.headers.get(REPLAY_COUNT, 0)
        return int(value) if isinstance(value, int | str) and str(value).isdigit() else 0

    @property
    def dedup_key(self) -> str:
        """Inbox key of this message: its id, or a hash of the body when it has none."""
        return self.message_id or "sha256:" + hashlib.sha256(self.body).hexdigest()


Handler = Callable[[Event, Delivery], Awaitable[None]]


async def _whole_message(msg: StreamMessage[Any]) -> StreamMessage[Any]:
    """FastStream decoder that hands the handler the whole message: the body is parsed by us, so errors
    can be classified, and the headers are needed for dead-lettering, retries and replays."""
    return msg


BROKER_ANNOTATIONS = ("x-death", "x-first-death-", "x-last-death-", "x-delivery-count")
"""Headers the broker adds when it dead-letters or redelivers (a TTL delay queue, the delivery limit): the
copy in ``<queue>.dlq`` must not carry a previous death's history as if it were this one."""


async def stage_dead_letter(
    session: AsyncSession,
    delivery: Delivery,
    *,
    reason: str,
    detail: str,
    extra_headers: dict[str, Any] | None = None,
) -> None:
    """Copy the delivery into ``<queue>.dlq`` through the outbox, with the reason in its headers.

    The copy keeps the body, the ``message_id`` and the original headers, so an operator's replay
    sends back exactly what arrived."""
    headers = {k: v for k, v in delivery.headers.items() if not k.startswith(BROKER_ANNOTATIONS)}
    headers.update(
        {
            DEAD_LETTER_REASON: reason,
            DEAD_LETTER_DETAIL: detail[:2000],
            DEAD_LETTER_QUEUE: delivery.queue,
            DEAD_LETTER_ROUTING_KEY: delivery.routing_key,
            DEAD_LETTER_AT: datetime.now(UTC).isoformat(),
            **(extra_headers or {}),
        }
    )
    message_id = _as_uuid(delivery.message_id) or uuid.uuid5(uuid.NAMESPACE_OID, delivery.dedup_key)
    await stage_message(
        session,
        queue=f"{delivery.queue}.dlq",
        body=delivery.body,
        message_id=message_id,
        message_type="dead-letter",
        headers=headers,
        correlation_id=delivery.correlation_id,
        order_id=_order_id_of(delivery.body),
    )


def _as_uuid(value: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(value) if value else None
    except ValueError:
        return None


def _order_id_of(body: bytes) -> uuid.UUID | None:
    try:
        import json

        data = json.loads(body)
        return uuid.UUID(str(data["order_id"])) if isinstance(data, dict) and "order_id" in data else None
    except Exception:
        return None


class Consumers:
    """Registers a service's subscribers on its broker with the shared parse-and-classify wrapper."""

    def __init__(
        self,
        broker: RabbitBroker,
        topology: Topology,
        session_factory: async_sessionmaker[AsyncSession],
        *,
        service: str,
    ) -> None:
        self._broker = broker
        self._topology = topology
        self._sessions = session_factory
        self._service = service

    def subscribe(self, spec: QueueSpec, handler: Handler) -> None:
        queue_name = self._topology.queue_name(spec)
        subscriber = self._broker.subscriber(
            self._topology.work_queue(spec),
            self._topology.events_exchange,
            decoder=_whole_message,
            title=f"{self._service}:{spec.name}",
        )

        async def on_message(message: StreamMessage[IncomingMessage]) -> None:
            raw = message.raw_message
            delivery = Delivery(
                queue=queue_name,
                body=bytes(message.body),
                headers=dict(raw.headers or {}),
                message_id=raw.message_id,
                correlation_id=raw.correlation_id,
                routing_key=raw.routing_key or "",
                redelivered=bool(raw.redelivered),
            )
            await self._dispatch(delivery, handler)

        subscriber(on_message)

    async def _dispatch(self, delivery: Delivery, handler: Handler) -> None:
        started = asyncio.get_running_loop().time()
        event_type = str(delivery.headers.get("event_type", "unknown"))
        with log_context(message_id=delivery.message_id, correlation_id=delivery.correlation_id):
            try:
                try:
                    event = parse_event(delivery.body)
                except ValidationError as exc:
                    await self._dead_letter(delivery, "malformed_message", _summarise(exc))
                    CONSUMED.labels(delivery.queue, event_type, "malformed").inc()
                    return
                event_type = event.event_type
                with log_context(order_id=event.order_id, event_id=event.event_id, correlation_id=event.correlation_id):
                    try:
                        await handler(event, delivery)
                    except DeadLetter as dead:
                        await self._dead_letter(delivery, dead.reason, dead.detail)
                        CONSUMED.labels(delivery.queue, event_type, "dead_lettered").inc()
                        return
                CONSUMED.labels(delivery.queue, event_type, "ok").inc()
            except RejectMessage:
                raise
            except Exception as exc:
                CONSUMED.labels(delivery.queue, event_type, "error").inc()
                backoff = min(5.0, 0.2 * 2**delivery.delivery_count)
                log.exception(
                    "handler failed; requeueing",
                    queue=delivery.queue,
                    delivery_count=delivery.delivery_count,
                    error=repr(exc),
                )
                await asyncio.sleep(backoff)
                raise RejectMessage(requeue=True) from exc
            finally:
                HANDLE_SECONDS.labels(delivery.queue).observe(asyncio.get_running_loop().time() - started)

    async def _dead_letter(self, delivery: Delivery, reason: str, detail: str) -> None:
        """Dead-letter through the outbox (reason preserved); if the database is unreachable, fall back to
        the broker's own dead-lettering (reason ``rejected``) so the message is still kept."""
        log.warning("dead-lettering message", queue=delivery.queue, reason=reason, detail=detail[:500])
        try:
            async with self._sessions() as session:
                key = f"{delivery.queue}:{delivery.dedup_key}:r{delivery.replay_count}"
                if await inbox.claim(session, f"{self._service}:dead-letter", key):
                    await stage_dead_letter(session, delivery, reason=reason, detail=detail)
                await session.commit()
        except Exception as exc:
            log.error("could not dead-letter through the outbox; rejecting to the broker DLX", error=repr(exc))
            raise RejectMessage(requeue=False) from exc


def _summarise(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ()))
        parts.append(f"{loc}: {err.get('msg')}" if loc else str(err.get("msg")))
    return "; ".join(parts)
