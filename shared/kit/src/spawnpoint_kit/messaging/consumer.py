"""How every service consumes: parse, deduplicate, handle, and classify what went wrong.

``Consumers.subscribe`` registers a FastStream subscriber for one ``Subscription`` (a queue and its handler
table, see ``handlers.py``). Raw bytes are decoded here, not by FastStream, so that a body that is not a
valid event is dead-lettered with the parse error as its reason instead of crashing or looping:

- malformed or unknown message  -> copied to ``<queue>.dlq`` through the outbox with
  ``x-spawnpoint-reason: malformed_message`` and the error, then acknowledged;
- ``DeadLetter`` raised by a handler (or an event type the table does not name) -> the same, with the
  handler's reason;
- the database unreachable (an infrastructure failure, not the handler's) -> the message is held: the
  handler is tried again with a growing pause (up to 5 s) until the database answers. Holding spends none
  of the message's delivery budget, and since every message in hand is held the consumer takes no new
  ones: an outage of any length dead-letters nothing. A message held longer than ``HOLD_LIMIT`` (far
  below the broker's 30-minute consumer timeout, which would close the channel and count a delivery) is
  put back at the tail of its queue with its headers and id (publisher confirm first, then ack), and the
  hold goes on with the next delivery;
- any other exception -> logged, then ``reject(requeue=True)`` after a short backoff. A reject counts
  toward the queue's ``x-delivery-limit`` on every RabbitMQ version; past it, the broker dead-letters the
  message (``x-death`` reason ``delivery_limit``). Nothing loops for ever, nothing is dropped.

With tracing on, each delivery is handled in a CONSUMER span continuing the trace the message carries
(``tracing.consuming``); a dead-lettered one is marked failed, a requeued one records its error.

The subscription runs the handlers in one unit of work (inbox claim, effects, staged events, commit);
the message is acknowledged only after that commit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from aio_pika import IncomingMessage
from faststream.exceptions import RejectMessage
from faststream.message import StreamMessage
from faststream.rabbit import RabbitBroker
from prometheus_client import Counter, Histogram
from pydantic import ValidationError

from spawnpoint_contracts import parse_event

from .. import tracing
from ..db import database_unreachable
from ..logs import get_logger, log_context
from ..unit_of_work import UnitOfWork
from .delivery import DeadLetter, Delivery
from .handlers import Subscription
from .topology import Topology

log = get_logger(__name__)

CONSUMED = Counter("messages_consumed_total", "Messages handled", ["queue", "event_type", "outcome"])
HELD = Counter(
    "messages_held_total",
    "Handler runs that found the database unreachable; the message was held (no delivery budget spent)",
    ["queue"],
)
HANDLE_SECONDS = Histogram(
    "message_handle_seconds",
    "Time to handle one message",
    ["queue"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)


HOLD_LIMIT = 600.0
"""Seconds a message is held through an outage before it is put back at the tail of its queue."""


async def _whole_message(msg: StreamMessage[Any]) -> StreamMessage[Any]:
    """FastStream decoder that hands the handler the whole message: the body is parsed by us, so errors
    can be classified, and the headers are needed for dead-lettering, retries and replays."""
    return msg


class InfrastructureDown(Exception):
    """The database could not be reached while handling a message (``__cause__`` says how)."""


class Consumers:
    """Registers a service's subscribers on its broker with the shared parse-and-classify wrapper."""

    def __init__(
        self,
        broker: RabbitBroker,
        topology: Topology,
        unit_of_work: Callable[[], UnitOfWork],
        *,
        service: str,
    ) -> None:
        self._broker = broker
        self._topology = topology
        self._unit_of_work = unit_of_work
        self._service = service

    def subscribe(self, subscription: Subscription[Any]) -> None:
        spec = subscription.queue
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
            if tracing.ENABLED:
                with tracing.consuming(
                    delivery.headers,
                    queue=queue_name,
                    exchange=raw.exchange or "",
                    routing_key=delivery.routing_key,
                    message_id=delivery.message_id,
                    correlation_id=delivery.correlation_id,
                    body_size=len(delivery.body),
                ):
                    await self._dispatch(delivery, subscription)
                return
            await self._dispatch(delivery, subscription)

        subscriber(on_message)

    async def _dispatch(self, delivery: Delivery, subscription: Subscription[Any]) -> None:
        """Handle the delivery; while the database is unreachable, hold it and try again."""
        loop = asyncio.get_running_loop()
        held_since: float | None = None
        pause = 0.25
        while True:
            try:
                await self._dispatch_once(delivery, subscription)
                return
            except InfrastructureDown as down:
                HELD.labels(delivery.queue).inc()
                now = loop.time()
                held_since = held_since if held_since is not None else now
                if now - held_since > HOLD_LIMIT:
                    await self._put_back(delivery)
                    return
                log.warning(
                    "database unreachable; holding the message",
                    queue=delivery.queue,
                    held_seconds=round(now - held_since, 1),
                    error=repr(down.__cause__)[:300],
                )
                await asyncio.sleep(pause)
                pause = min(5.0, pause * 2)

    async def _put_back(self, delivery: Delivery) -> None:
        """Republish the held message at the tail of its own queue (confirmed), then let it be acked."""
        log.warning("held too long; putting the message back at the tail of its queue", queue=delivery.queue)
        await self._broker.publish(
            delivery.body,
            queue=delivery.queue,
            exchange=None,
            mandatory=True,
            persist=True,
            message_id=delivery.message_id,
            correlation_id=delivery.correlation_id,
            headers={k: v for k, v in delivery.headers.items() if k != "x-delivery-count"},
            content_type="application/json",
        )

    async def _dispatch_once(self, delivery: Delivery, subscription: Subscription[Any]) -> None:
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
                if tracing.ENABLED:
                    tracing.annotate({"spawnpoint.event_type": event_type, "spawnpoint.order_id": event.order_id})
                with log_context(order_id=event.order_id, event_id=event.event_id, correlation_id=event.correlation_id):
                    try:
                        await subscription.handle(event, delivery)
                    except DeadLetter as dead:
                        await self._dead_letter(delivery, dead.reason, dead.detail)
                        CONSUMED.labels(delivery.queue, event_type, "dead_lettered").inc()
                        return
                CONSUMED.labels(delivery.queue, event_type, "ok").inc()
            except (RejectMessage, InfrastructureDown):
                raise
            except Exception as exc:
                if database_unreachable(exc):
                    raise InfrastructureDown() from exc
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
        if tracing.ENABLED:
            tracing.fail(f"dead-lettered: {reason}")
        try:
            async with self._unit_of_work() as uow:
                key = f"{delivery.queue}:{delivery.dedup_key}:r{delivery.replay_count}"
                if await uow.claim(f"{self._service}:dead-letter", key):
                    uow.dead_letter(reason, detail, delivery=delivery)
                    await uow.commit()
        except Exception as exc:
            if database_unreachable(exc):
                raise InfrastructureDown() from exc
            log.error("could not dead-letter through the outbox; rejecting to the broker DLX", error=repr(exc))
            raise RejectMessage(requeue=False) from exc


def _summarise(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ()))
        parts.append(f"{loc}: {err.get('msg')}" if loc else str(err.get("msg")))
    return "; ".join(parts)
