"""Starting while the node of the classic (one-node) queues is down: the DLQs and delay queues exist already, so
the start goes on to the quorum queues instead of waiting for that node (``make cluster``: a service started
then never became ready). The broker answers such a redeclaration with a channel error, played here by a
stand-in: a single local RabbitMQ cannot have a queue's home node down."""

from __future__ import annotations

from typing import Any, cast

import pytest
from aiormq.exceptions import ChannelNotFoundEntity, ChannelPreconditionFailed
from faststream.rabbit import RabbitBroker, RabbitExchange, RabbitQueue

from spawnpoint_kit.messaging.specs import QueueSpec
from spawnpoint_kit.messaging.topology import Topology, home_node_down

pytestmark = pytest.mark.unit

HOME_DOWN = "NOT_FOUND - home node 'rabbit@b' of durable queue 'x.dlq' in vhost '/' is down or inaccessible"


class _Queue:
    def __init__(self, name: str, log: list[str]) -> None:
        self.name, self.log = name, log

    async def bind(self, exchange: Any, routing_key: str = "", **_: Any) -> None:
        self.log.append(f"bind {self.name} {getattr(exchange, 'name', exchange)} {routing_key}")


class _Channel:
    def __init__(self, broker: _Broker) -> None:
        self.broker, self.is_closed = broker, False

    async def declare_queue(self, name: str, **_: Any) -> _Queue:
        error = self.broker.refusals.get(name)
        if error is not None:
            self.is_closed = True  # as the broker does: a channel error closes the channel
            raise error
        self.broker.log.append(f"declare {name}")
        return _Queue(name, self.broker.log)

    async def close(self) -> None:
        self.is_closed = True


class _Broker:
    """The FastStream broker as ``Topology.declare`` uses it, with one-node queues refused by name."""

    def __init__(self, refusals: dict[str, BaseException]) -> None:
        self.refusals = refusals
        self.log: list[str] = []
        self.channels: list[_Channel] = []

    async def connect(self) -> _Broker:
        return self

    async def channel(self, **_: Any) -> _Channel:
        self.channels.append(_Channel(self))
        return self.channels[-1]

    async def declare_exchange(self, exchange: RabbitExchange) -> RabbitExchange:
        return exchange

    async def declare_queue(self, queue: RabbitQueue) -> _Queue:
        self.log.append(f"declare {queue.name}")
        return _Queue(queue.name, self.log)


def test_only_the_home_node_answer_counts_as_a_queue_whose_node_is_down() -> None:
    assert home_node_down(ChannelNotFoundEntity(404, HOME_DOWN))
    assert not home_node_down(ChannelNotFoundEntity(404, "NOT_FOUND - no queue 'x.dlq' in vhost '/'"))
    assert not home_node_down(ChannelPreconditionFailed(406, "PRECONDITION_FAILED - inequivalent arg"))


async def test_a_dead_letter_queue_on_a_down_node_does_not_hold_up_the_start() -> None:
    topology = Topology("t.")
    spec = QueueSpec("work", ("thing.v1",))
    broker = _Broker({topology.dlq_name(spec): ChannelNotFoundEntity(404, HOME_DOWN)})
    await topology.declare(cast(RabbitBroker, broker), [spec])
    assert f"declare {topology.queue_name(spec)}" in broker.log, "the quorum work queue is declared all the same"
    assert f"bind {topology.queue_name(spec)} {topology.events_exchange.name} thing.v1" in broker.log
    assert all(c.is_closed for c in broker.channels), "the refused declaration's channel is its own, and closed"
    await topology.declare_retry_queues(
        cast(RabbitBroker, _Broker({topology.retry_queue_name(spec, 30): ChannelNotFoundEntity(404, HOME_DOWN)})),
        spec,
        [30],
    )


async def test_any_other_refusal_of_a_one_node_queue_still_stops_the_start() -> None:
    topology = Topology("t.")
    spec = QueueSpec("work", ("thing.v1",))
    for error in (
        ChannelPreconditionFailed(406, "PRECONDITION_FAILED - inequivalent arg 'x-message-ttl'"),
        ChannelNotFoundEntity(404, "NOT_FOUND - no exchange 't.spawnpoint.dlx' in vhost '/'"),
    ):
        broker = _Broker({topology.dlq_name(spec): error})
        with pytest.raises(type(error)):
            await topology.declare(cast(RabbitBroker, broker), [spec])
