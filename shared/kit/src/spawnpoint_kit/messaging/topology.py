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

Every name is prefixed with the namespace (``SPAWNPOINT_NAMESPACE``) so test runs never share queues.
Declaring is idempotent; changing an argument of an existing queue needs a migration (RabbitMQ refuses a
redeclare with different arguments with PRECONDITION_FAILED).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from faststream.rabbit import ExchangeType, QueueType, RabbitBroker, RabbitExchange, RabbitQueue

from spawnpoint_contracts.topology import DEAD_LETTER_EXCHANGE, EVENTS_EXCHANGE

from .specs import QueueSpec


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
            # Not re-declared when the connection recovers: a classic queue lives on one node, and while that
            # node is down its redeclaration fails (NOT_FOUND, home node down), which would fail the whole
            # recovery and keep every consumer away although a majority serves the quorum queues
            # (``make cluster``). Durable queues and their bindings outlive a reconnect anyway.
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
            dlq = await broker.declare_queue(self.dead_letter_queue(spec))
            await dlq.bind(dlx, routing_key=self.queue_name(spec))
            queue = await broker.declare_queue(self.work_queue(spec))
            for key in spec.bindings:
                await queue.bind(events, routing_key=key)

    async def declare_retry_queues(self, broker: RabbitBroker, spec: QueueSpec, delays: Sequence[int]) -> None:
        """Declare the delay queues that feed ``spec``'s work queue (owned by that queue's consumer)."""
        for delay in delays:
            await broker.declare_queue(self.retry_queue(spec, delay))
