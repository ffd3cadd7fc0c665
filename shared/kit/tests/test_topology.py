"""Real-broker checks that the queue arguments take effect (the in-memory test broker cannot show this)."""

from __future__ import annotations

from typing import Any, cast

import aio_pika
import pytest
from faststream.rabbit import RabbitBroker

from spawnpoint_kit.messaging.specs import QueueSpec
from spawnpoint_kit.messaging.topology import Topology
from spawnpoint_kit.testing import eventually

pytestmark = pytest.mark.component


def _first_death(message: aio_pika.abc.AbstractIncomingMessage) -> dict[str, Any]:
    deaths = cast(list[dict[str, Any]], message.headers["x-death"])
    return deaths[0]


async def _wait_message(queue: aio_pika.abc.AbstractQueue) -> aio_pika.abc.AbstractIncomingMessage:
    async def fetch() -> aio_pika.abc.AbstractIncomingMessage | None:
        return await queue.get(no_ack=False, fail=False)

    return await eventually(fetch, timeout=10, what=f"a message on {queue.name}")


async def test_declaring_twice_is_idempotent_and_a_rejected_message_is_dead_lettered(
    broker: RabbitBroker, topology: Topology, amqp: aio_pika.abc.AbstractRobustConnection
) -> None:
    spec = QueueSpec("work", ("thing.happened.v1",), delivery_limit=3)
    await topology.declare(broker, [spec])
    await topology.declare(broker, [spec])
    channel = await amqp.channel()
    events = await channel.get_exchange(topology.events_exchange.name)
    await events.publish(aio_pika.Message(b"{}", message_id="m-1"), routing_key="thing.happened.v1", mandatory=True)
    work = await channel.get_queue(topology.queue_name(spec))
    message = await _wait_message(work)
    await message.reject(requeue=False)
    dlq = await channel.get_queue(topology.dlq_name(spec))
    dead = await _wait_message(dlq)
    assert dead.message_id == "m-1"
    death = _first_death(dead)
    assert death["reason"] == "rejected"
    assert death["queue"] == topology.queue_name(spec)
    await dead.ack()
    await channel.close()


async def test_past_the_delivery_limit_a_requeued_message_is_dead_lettered_not_looped(
    broker: RabbitBroker, topology: Topology, amqp: aio_pika.abc.AbstractRobustConnection
) -> None:
    spec = QueueSpec("poison", ("poison.v1",), delivery_limit=2)
    await topology.declare(broker, [spec])
    channel = await amqp.channel()
    events = await channel.get_exchange(topology.events_exchange.name)
    await events.publish(aio_pika.Message(b"poison", message_id="p-1"), routing_key="poison.v1", mandatory=True)
    work = await channel.get_queue(topology.queue_name(spec))
    dlq = await channel.get_queue(topology.dlq_name(spec))
    deliveries = 0

    async def rejected_until_dead_lettered() -> aio_pika.abc.AbstractIncomingMessage | None:
        nonlocal deliveries
        message = await work.get(no_ack=False, fail=False)
        if message is not None:
            deliveries += 1
            await message.reject(requeue=True)
            return None
        return await dlq.get(no_ack=False, fail=False)

    dead = await eventually(rejected_until_dead_lettered, timeout=15, what="the poison message in the DLQ")
    assert dead.message_id == "p-1"
    assert _first_death(dead)["reason"] == "delivery_limit"
    await dead.ack()
    assert deliveries == 3  # the first delivery plus two redeliveries, then the limit
    await channel.close()
