"""Purging a dead-letter queue deletes what the operator counted and confirmed, never what arrived after."""

from __future__ import annotations

import aio_pika
import pytest
from faststream.rabbit import RabbitBroker

from spawnpoint_kit.messaging.dlq import DeadLetterQueue, connect
from spawnpoint_kit.messaging.specs import QueueSpec
from spawnpoint_kit.messaging.topology import Topology
from spawnpoint_kit.settings import CommonSettings

pytestmark = pytest.mark.component


async def test_a_confirmed_purge_leaves_the_messages_that_arrived_after_the_count(
    broker: RabbitBroker, topology: Topology, settings: CommonSettings
) -> None:
    """Finding 12: ``dlq purge --yes`` showed a count, then purged the whole queue."""
    spec = QueueSpec("work", ())
    await topology.declare(broker, [spec])
    connection = await connect(settings.broker_url.get_secret_value())
    try:
        channel = await connection.channel()
        for n in range(3):
            await channel.default_exchange.publish(
                aio_pika.Message(f"counted-{n}".encode(), message_id=f"m{n}"), routing_key=topology.dlq_name(spec)
            )
        dlq = DeadLetterQueue(connection, topology.queue_name(spec))
        counted = await dlq.depth()
        assert counted == 3
        await channel.default_exchange.publish(
            aio_pika.Message(b"arrived-later", message_id="late"), routing_key=topology.dlq_name(spec)
        )
        assert await dlq.purge(limit=counted) == 3
        left = await dlq.peek()
        assert [m.message_id for m in left] == ["late"]
        await channel.close()
    finally:
        await connection.close()
