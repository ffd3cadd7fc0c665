"""The relay against the real PostgreSQL and RabbitMQ: confirms, returns, two relays at once, backlog."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, cast

import aio_pika
import pytest
import sqlalchemy as sa
from aiormq.exceptions import AMQPConnectionError
from faststream.rabbit import RabbitBroker
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from spawnpoint_contracts import PaymentFailed, PaymentFailedPayload, PaymentProcessing, PaymentProcessingPayload
from spawnpoint_kit.messaging.delivery import Delivery
from spawnpoint_kit.messaging.outbox import stage_event, stage_message
from spawnpoint_kit.messaging.relay import OutboxRelay, backoff_seconds
from spawnpoint_kit.messaging.specs import QueueSpec
from spawnpoint_kit.messaging.topology import Topology
from spawnpoint_kit.messaging.wire import Unpublishable
from spawnpoint_kit.unit_of_work import SqlUnitOfWork

from .conftest import drain

pytestmark = pytest.mark.component


def _event() -> PaymentProcessing:
    return PaymentProcessing(
        order_id=uuid.uuid4(),
        correlation_id="c-1",
        producer="test",
        payload=PaymentProcessingPayload(session_id="cs_1"),
    )


async def _clear(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(sa.text("DELETE FROM outbox"))


async def test_two_relays_publish_every_row_once_with_the_event_id_as_message_id(
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    broker: RabbitBroker,
    topology: Topology,
    amqp: aio_pika.abc.AbstractRobustConnection,
    database_url: str,
) -> None:
    await _clear(engine)
    spec = QueueSpec("sink", ("payment.processing.v1",))
    await topology.declare(broker, [spec])
    events = [_event() for _ in range(300)]
    async with sessions() as session:
        for event in events:
            await stage_event(session, event, topology)
        await session.commit()
    relays = [OutboxRelay(engine, broker, database_url=database_url, batch_size=50) for _ in range(2)]
    published = 0
    while True:
        counts = await asyncio.gather(*(r.drain_once() for r in relays))
        published += sum(counts)
        if sum(counts) == 0:
            break
    assert published == 300
    channel = await amqp.channel()
    queue = await channel.get_queue(topology.queue_name(spec))
    received = await drain(queue)
    assert sorted(m.message_id or "" for m in received) == sorted(str(e.event_id) for e in events)
    assert all(m.delivery_mode == aio_pika.DeliveryMode.PERSISTENT for m in received)
    async with engine.connect() as conn:
        left = await conn.scalar(sa.text("SELECT count(*) FROM outbox WHERE published_at IS NULL"))
    assert left == 0
    stats = await relays[0].stats()
    assert stats.backlog == 0
    await channel.close()


async def test_an_unroutable_event_stays_unpublished_with_its_error(
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    broker: RabbitBroker,
    topology: Topology,
    database_url: str,
) -> None:
    await _clear(engine)
    await topology.declare(broker, [])  # exchanges only: nothing is bound
    event = _event()
    async with sessions() as session:
        await stage_event(session, event, topology)
        await session.commit()
    relay = OutboxRelay(engine, broker, database_url=database_url)
    assert await relay.drain_once() == 0
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                sa.text("SELECT published_at, attempts, last_error FROM outbox WHERE id = :id"), {"id": event.event_id}
            )
        ).one()
    assert row.published_at is None
    assert row.attempts == 1
    assert "NO_ROUTE" in row.last_error
    stats = await relay.stats()
    assert stats.backlog == 1


async def test_a_rolled_back_transaction_leaves_no_event(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession], topology: Topology
) -> None:
    await _clear(engine)
    async with sessions() as session:
        await stage_event(session, _event(), topology)
        await session.rollback()
    async with engine.connect() as conn:
        assert await conn.scalar(sa.text("SELECT count(*) FROM outbox")) == 0


async def test_a_dead_letter_copy_keeps_the_message_but_not_an_earlier_death(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """A message that came back from a TTL delay queue carries that expiry's ``x-death`` and
    ``x-first-death-*`` history; its copy in the dead-letter queue must show why it failed now."""
    await _clear(engine)
    delivery = Delivery(
        queue="t.provisioner.order-paid",
        body=b'{"event_type": "OrderPaid"}',
        headers={
            "x-death": [{"queue": "t.provisioner.order-paid.retry.30s", "reason": "expired", "count": 1}],
            "x-first-death-reason": "expired",
            "x-first-death-queue": "t.provisioner.order-paid.retry.30s",
            "x-last-death-reason": "expired",
            "x-delivery-count": 3,
            "traceparent": "00-abc-def-01",
        },
        message_id=str(uuid.uuid4()),
        correlation_id="c-1",
        routing_key="order.paid.v1",
        redelivered=True,
    )
    async with SqlUnitOfWork(sessions, Topology("t.")) as uow:
        uow.dead_letter("no_capacity", "no node has room", delivery=delivery)
        await uow.commit()
    async with engine.connect() as conn:
        row = (await conn.execute(sa.text("SELECT routing_key, headers FROM outbox"))).mappings().one()
    assert row["routing_key"] == "t.provisioner.order-paid.dlq"
    headers = row["headers"]
    assert headers["x-spawnpoint-reason"] == "no_capacity"
    assert headers["traceparent"] == "00-abc-def-01"
    assert not [k for k in headers if k.startswith(("x-death", "x-first-death-", "x-last-death-", "x-delivery"))]


async def _poison_row(engine: AsyncEngine, topology: Topology, *, attempts: int) -> uuid.UUID:
    """A row as an older release could leave it: a correlation id AMQP cannot carry (400 bytes), failed
    ``attempts`` times already. Inserted directly: staging refuses such a row now."""
    row_id = uuid.uuid4()
    async with engine.begin() as conn:
        await conn.execute(
            sa.text(
                "INSERT INTO outbox (id, exchange, routing_key, message_type, body, headers, correlation_id, "
                "created_at, available_at, attempts) VALUES (:id, :x, 'payment.processing.v1', 'PaymentProcessing',"
                " '{}', '{}', :c, now() - interval '1 hour', now(), :a)"
            ),
            {"id": row_id, "x": topology.events_exchange.name, "c": "\u00e9" * 200, "a": attempts},
        )
    return row_id


async def test_one_poison_outbox_row_never_holds_up_the_others(
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    broker: RabbitBroker,
    topology: Topology,
    amqp: aio_pika.abc.AbstractRobustConnection,
    database_url: str,
) -> None:
    """Finding 2: at 1,024 attempts the backoff overflowed and rolled back the whole batch's marks."""
    await _clear(engine)
    spec = QueueSpec("sink", ("payment.processing.v1",))
    await topology.declare(broker, [spec])
    poison = await _poison_row(engine, topology, attempts=1024)
    events = [_event() for _ in range(5)]
    async with sessions() as session:
        for event in events:
            await stage_event(session, event, topology)
        await session.commit()
    relay = OutboxRelay(engine, broker, database_url=database_url, batch_size=50)
    assert await relay.drain_once() == 5
    assert await relay.drain_once() == 0, "the good rows were marked: nothing is published twice"
    async with engine.connect() as conn:
        rows = await conn.execute(sa.text("SELECT id, published_at, attempts, last_error, available_at FROM outbox"))
        by_id = {row.id: row for row in rows}
    assert all(by_id[e.event_id].published_at is not None for e in events)
    assert by_id[poison].published_at is None and by_id[poison].attempts == 1025
    assert "255 bytes" in by_id[poison].last_error
    channel = await amqp.channel()
    received = await drain(await channel.get_queue(topology.queue_name(spec)))
    assert sorted(m.message_id or "" for m in received) == sorted(str(e.event_id) for e in events)
    await channel.close()


def test_the_backoff_is_finite_for_any_number_of_attempts() -> None:
    for attempts in (0, 1, 10, 1023, 1024, 10**6):
        assert 0 < backoff_seconds(attempts, 10.0) <= 10.0


async def test_a_message_that_could_never_be_published_is_refused_where_it_is_staged(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession], topology: Topology
) -> None:
    """Finding 1, made impossible: the relay must never be the first to find out."""
    await _clear(engine)
    async with sessions() as session:
        with pytest.raises(Unpublishable, match="routing_key"):
            await stage_message(
                session, queue="q" * 300, body=b"{}", message_id=uuid.uuid4(), message_type="dead-letter"
            )
        with pytest.raises(Unpublishable, match="correlation_id"):
            await stage_message(
                session,
                queue="q",
                body=b"{}",
                message_id=uuid.uuid4(),
                message_type="dead-letter",
                correlation_id="\u00e9" * 200,
            )
        with pytest.raises(Unpublishable, match="header name"):
            await stage_message(
                session, queue="q", body=b"{}", message_id=uuid.uuid4(), message_type="t", headers={"h" * 300: 1}
            )
        await session.rollback()
    with pytest.raises(ValidationError):
        PaymentProcessing(
            order_id=uuid.uuid4(),
            correlation_id="\u00e9" * 200,
            producer="test",
            payload=PaymentProcessingPayload(session_id="cs_1"),
        )


class _Broker:
    """A publisher whose answer the test decides, per routing key."""

    def __init__(self, failures: dict[str, BaseException]) -> None:
        self.failures = failures
        self.published: list[str] = []

    async def publish(self, body: bytes, **kwargs: Any) -> None:
        error = self.failures.get(kwargs["routing_key"])
        if error is not None:
            raise error
        self.published.append(kwargs["message_id"])


async def _due_again(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(sa.text("UPDATE outbox SET available_at = now() WHERE published_at IS NULL"))


async def test_a_row_that_keeps_failing_on_its_own_is_parked_and_the_others_go_on(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession], topology: Topology, database_url: str
) -> None:
    await _clear(engine)
    good, bad = (
        _event(),
        PaymentFailed(
            order_id=uuid.uuid4(), correlation_id="c-2", producer="test", payload=PaymentFailedPayload(session_id="cs")
        ),
    )
    async with sessions() as session:
        await stage_event(session, good, topology)
        await stage_event(session, bad, topology)
        await session.commit()
    broker = _Broker({bad.routing_key: ValueError("refused: NO_ROUTE")})
    relay = OutboxRelay(engine, cast(RabbitBroker, broker), database_url=database_url, park_after_attempts=3)
    for _ in range(4):
        await relay.drain_once()
        await _due_again(engine)
    assert broker.published == [str(good.event_id)]
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                sa.text("SELECT attempts, parked_at, last_error FROM outbox WHERE id = :id"), {"id": bad.event_id}
            )
        ).one()
    assert row.attempts == 3 and row.parked_at is not None and "NO_ROUTE" in row.last_error
    assert (await relay.stats()).parked == 1
    assert await relay.drain_once() == 0, "a parked row is not claimed again"


async def test_a_broker_outage_counts_no_attempt_however_long_it_lasts(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession], topology: Topology, database_url: str
) -> None:
    await _clear(engine)
    event = _event()
    async with sessions() as session:
        await stage_event(session, event, topology)
        await session.commit()
    down = _Broker({event.routing_key: AMQPConnectionError("Connect call failed ('127.0.0.1', 5672)")})
    relay = OutboxRelay(engine, cast(RabbitBroker, down), database_url=database_url, park_after_attempts=2)
    for _ in range(5):
        assert await relay.drain_once() == 0
    async with engine.connect() as conn:
        row = (
            await conn.execute(sa.text("SELECT attempts, parked_at FROM outbox WHERE id = :id"), {"id": event.event_id})
        ).one()
    assert (row.attempts, row.parked_at) == (0, None)
    up = _Broker({})
    assert await OutboxRelay(engine, cast(RabbitBroker, up), database_url=database_url).drain_once() == 1
    assert up.published == [str(event.event_id)]
