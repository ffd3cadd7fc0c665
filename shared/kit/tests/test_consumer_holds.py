"""A database outage never spends a message's delivery budget: the consumer holds the message and tries
again (finding 6 of the reliability issue), against the real RabbitMQ."""

from __future__ import annotations

import uuid

import aio_pika
import pytest
import sqlalchemy.exc
from faststream.rabbit import RabbitBroker

from spawnpoint_contracts import PaymentProcessing, PaymentProcessingPayload
from spawnpoint_kit.messaging import consumer
from spawnpoint_kit.messaging.consumer import Consumers
from spawnpoint_kit.messaging.handlers import Subscription
from spawnpoint_kit.messaging.specs import QueueSpec
from spawnpoint_kit.messaging.topology import Topology
from spawnpoint_kit.settings import CommonSettings
from spawnpoint_kit.testing import eventually
from spawnpoint_kit.unit_of_work import FakeUnitOfWork

pytestmark = pytest.mark.component


def _unreachable() -> Exception:
    try:
        raise ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 5432)")
    except ConnectionRefusedError as cause:
        try:
            raise sqlalchemy.exc.OperationalError("SELECT 1", None, cause) from cause
        except sqlalchemy.exc.OperationalError as exc:
            return exc


async def _run_until_handled(
    topology: Topology, settings: CommonSettings, amqp: aio_pika.abc.AbstractRobustConnection, failures: int
) -> tuple[list[int], int, int]:
    """Publish one event to a queue whose handler meets an unreachable database ``failures`` times."""
    spec = QueueSpec("work", ("payment.processing.v1",), delivery_limit=2)
    calls: list[int] = []
    uow = FakeUnitOfWork()

    async def handle(event: PaymentProcessing, _: FakeUnitOfWork) -> None:
        calls.append(len(calls))
        if len(calls) <= failures:
            raise _unreachable()

    broker = RabbitBroker(settings.broker_url.get_secret_value(), apply_types=False)
    consumers = Consumers(broker, topology, lambda: uow, service="kit-tests")
    consumers.subscribe(Subscription(spec, {PaymentProcessing: [handle]}, unit_of_work=lambda: uow))
    await broker.connect()
    await topology.declare(broker, [spec])
    await broker.start()
    try:
        event = PaymentProcessing(
            order_id=uuid.uuid4(), correlation_id="c", producer="t", payload=PaymentProcessingPayload(session_id="s")
        )
        channel = await amqp.channel()
        exchange = await channel.get_exchange(topology.events_exchange.name)
        await exchange.publish(
            aio_pika.Message(event.to_json_bytes(), message_id=str(event.event_id)), routing_key=event.routing_key
        )

        async def handled() -> bool:
            return uow.commits == 1

        await eventually(handled, timeout=60, what="the event handled once the database is back")
        dlq = await channel.declare_queue(topology.dlq_name(spec), passive=True)
        work = await channel.declare_queue(topology.queue_name(spec), passive=True)
        depths = (dlq.declaration_result.message_count or 0, work.declaration_result.message_count or 0)
        await channel.close()
        return calls, *depths
    finally:
        await broker.stop()


async def test_a_database_outage_holds_the_message_and_spends_no_delivery_budget(
    topology: Topology, settings: CommonSettings, amqp: aio_pika.abc.AbstractRobustConnection
) -> None:
    calls, dead, waiting = await _run_until_handled(topology, settings, amqp, failures=4)  # delivery limit is 2
    assert len(calls) == 5, "tried again until the database answered"
    assert (dead, waiting) == (0, 0), "nothing dead-lettered, nothing left behind"


async def test_a_message_held_too_long_goes_back_to_the_tail_and_is_still_handled_once(
    topology: Topology,
    settings: CommonSettings,
    amqp: aio_pika.abc.AbstractRobustConnection,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(consumer, "HOLD_LIMIT", 0.3)
    calls, dead, waiting = await _run_until_handled(topology, settings, amqp, failures=6)
    assert len(calls) == 7
    assert (dead, waiting) == (0, 0)
