"""The broker topology, declared in one place.

- One durable topic exchange for events and one direct dead-letter exchange.
- One quorum queue per consuming service and purpose, with an explicit ``x-delivery-limit`` (3.10 has no
  default, 4.x defaults to 20), at-least-once dead-lettering (which needs ``x-overflow=reject-publish``)
  and a dead-letter routing key equal to the queue's own name.
- A durable ``<queue>.dlq`` for each, bound to the dead-letter exchange by that name. DLQs are classic
  queues: an operator lists them by fetching and requeueing, which must not count toward a delivery
  limit (quorum queues on 4.x would drop a message after 20 listings).
- Optional delay queues ``<queue>.retry.<n>s`` for redelivery after a delay: classic queues with a fixed
  ``x-message-ttl`` whose expired messages dead-letter back to the work queue through the default
  exchange. One TTL per queue keeps expiry in FIFO order.

The classic queues are declared each on a short-lived channel of its own, and one whose home node is down is
skipped with a warning: it exists already (a classic queue is only ever "down" once declared, and it was
bound right after), its durable binding stands, and nothing at start may wait for one node while a majority
serves the quorum queues. Otherwise a service process started while that node is down would never become
ready (``make cluster``). The redeclaration would also close the channel it ran on, which must not be the
channel the consumers share.

Every name is prefixed with the namespace (``SPAWNPOINT_NAMESPACE``) so test runs never share queues.
Declaring is idempotent; changing an argument of an existing queue needs a migration (RabbitMQ refuses a
redeclare with different arguments with PRECONDITION_FAILED).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

from aiormq.exceptions import ChannelNotFoundEntity
from faststream.rabbit import ExchangeType, QueueType, RabbitBroker, RabbitExchange, RabbitQueue

from spawnpoint_contracts.topology import DEAD_LETTER_EXCHANGE, EVENTS_EXCHANGE

from ..logs import get_logger
from .specs import QueueSpec

log = get_logger(__name__)


def home_node_down(error: BaseException) -> bool:
    """RabbitMQ's answer for a classic queue that exists but whose node is down: ``NOT_FOUND - home node
    'rabbit@x' of durable queue 'q' in vhost '/' is down or inaccessible`` (a missing queue says ``no queue``)."""
    return isinstance(error, ChannelNotFoundEntity) and "home node" in str(error)


async def declare_one_node_queue(
    broker: RabbitBroker, queue: RabbitQueue, *, bind_to: str = "", routing_key: str = ""
) -> bool:
    """Declare (and bind) a classic queue on a channel of its own; False when it exists but its node is down
    (logged, nothing raised). Any other refusal (PRECONDITION_FAILED for changed arguments) raises."""
    connection = await broker.connect()
    channel = await connection.channel(publisher_confirms=False)
    try:
        declared = await channel.declare_queue(queue.name, durable=queue.durable, arguments=queue.arguments)
        if bind_to:
            await declared.bind(bind_to, routing_key=routing_key)
        return True
    except ChannelNotFoundEntity as exc:
        if not home_node_down(exc):
            raise
        log.warning(
            "a one-node queue's node is down: it exists and keeps its binding; going on without declaring it",
            queue=queue.name,
            error=str(exc)[:300],
        )
        return False
    finally:
        if not channel.is_closed:
            with contextlib.suppress(Exception):
                await channel.close()


@dataclass(frozen=True)
class Topology:
    namespace: str = ""

    def name(self, base: str) -> str:
        return f"{self.namespace}{base}"

    @property
    def events_exchange(self) -> RabbitExchange:
        return RabbitExchange(self.name(EVENTS_EXCHANGE), type=ExchangeType.TOPIC, durable=True)

    @property
    def dead_letter_exchange(self) -> RabbitExchange:
        return RabbitExchange(self.name(DEAD_LETTER_EXCHANGE), type=ExchangeType.DIRECT, durable=True)

    def queue_name(self, spec: QueueSpec) -> str:
        return self.name(spec.name)

    def dlq_name(self, spec: QueueSpec) -> str:
        return f"{self.queue_name(spec)}.dlq"

    def retry_queue_name(self, spec: QueueSpec, delay: int) -> str:
        return f"{self.queue_name(spec)}.retry.{delay}s"

    def work_queue(self, spec: QueueSpec, routing_key: str | None = None) -> RabbitQueue:
        """The quorum queue (as a FastStream object) with every argument set explicitly."""
        return RabbitQueue(
            self.queue_name(spec),
            queue_type=QueueType.QUORUM,
            durable=True,
            routing_key=routing_key or (spec.bindings[0] if spec.bindings else ""),
            arguments={
                "x-dead-letter-exchange": self.dead_letter_exchange.name,
                "x-dead-letter-routing-key": self.queue_name(spec),
                "x-delivery-limit": spec.delivery_limit,
                "x-dead-letter-strategy": "at-least-once",
                "x-overflow": "reject-publish",
            },
        )

    def dead_letter_queue(self, spec: QueueSpec) -> RabbitQueue:
        return RabbitQueue(
            self.dlq_name(spec),
            queue_type=QueueType.CLASSIC,
            durable=True,
            routing_key=self.queue_name(spec),
            # Never re-declared when the connection recovers: a classic queue lives on one node, and while that
            # node is down its redeclaration fails (NOT_FOUND, home node down), which would fail the whole
            # recovery and keep every consumer away although a majority serves the quorum queues
            # (``make cluster``). Durable queues and their bindings outlive a reconnect anyway. (``declare``
            # declares it on a channel closed right after, so no channel's recovery holds it either.)
            robust=False,
        )

    def retry_queue(self, spec: QueueSpec, delay: int) -> RabbitQueue:
        return RabbitQueue(
            self.retry_queue_name(spec, delay),
            queue_type=QueueType.CLASSIC,
            durable=True,
            robust=False,  # as the dead-letter queue: a one-node queue must not block reconnecting
            arguments={
                "x-message-ttl": delay * 1000,
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": self.queue_name(spec),
            },
        )

    async def declare(self, broker: RabbitBroker, specs: Sequence[QueueSpec]) -> None:
        """Declare exchanges, work queues with their bindings and their DLQs (idempotent).

        A service declares the queues it consumes; the deployment (or ``scripts/devstack.py``) declares
        the whole system's before the first start, so an event never reaches only the consumers that
        happen to be running."""
        events = await broker.declare_exchange(self.events_exchange)
        dlx = await broker.declare_exchange(self.dead_letter_exchange)
        for spec in specs:
            await declare_one_node_queue(
                broker, self.dead_letter_queue(spec), bind_to=dlx.name, routing_key=self.queue_name(spec)
            )
            queue = await broker.declare_queue(self.work_queue(spec))
            for key in spec.bindings:
                await queue.bind(events, routing_key=key)

    async def declare_retry_queues(self, broker: RabbitBroker, spec: QueueSpec, delays: Sequence[int]) -> None:
        """Declare the delay queues that feed ``spec``'s work queue (owned by that queue's consumer)."""
        for delay in delays:
            await declare_one_node_queue(broker, self.retry_queue(spec, delay))
