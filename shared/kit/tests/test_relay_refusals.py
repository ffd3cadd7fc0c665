"""The relay when the broker refuses rather than the row failing: a nack, a return from a queue whose node is
down, a lost channel. None of them is the row's fault, so none counts toward parking it, and after a refusal
the relay publishes on a new channel (``make cluster`` found channels nacked for minutes on RabbitMQ 3.10
while fresh ones were confirmed: docs/operations.md)."""

from __future__ import annotations

import contextlib
import uuid
from typing import Any, cast

import aio_pika
import pytest
import sqlalchemy as sa
from aiormq.abc import DeliveredMessage
from aiormq.exceptions import ChannelInvalidStateError, ChannelNotFoundEntity, DeliveryError, PublishError
from faststream.rabbit import RabbitBroker
from pamqp import commands as spec
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from spawnpoint_kit.messaging.outbox import stage_message
from spawnpoint_kit.messaging.relay import (
    BrokerUnavailable,
    OutboxRelay,
    PublishingChannel,
    broker_unavailable,
    refused_by_broker,
)
from spawnpoint_kit.messaging.specs import QueueSpec
from spawnpoint_kit.messaging.topology import Topology

pytestmark = pytest.mark.component


def _nack() -> DeliveryError:
    return DeliveryError(None, spec.Basic.Nack(delivery_tag=1))


def _returned(queue: str) -> PublishError:
    delivered = DeliveredMessage(
        delivery=spec.Basic.Return(reply_code=312, reply_text="NO_ROUTE", exchange="", routing_key=queue),
        header=None,  # type: ignore[arg-type]
        body=b"",
        channel=None,  # type: ignore[arg-type]
    )
    return PublishError(delivered, spec.Basic.Return(reply_code=312, reply_text="NO_ROUTE", routing_key=queue))


def test_a_nack_a_timeout_and_a_lost_channel_are_the_broker_s_but_a_return_or_a_missing_exchange_are_the_row_s() -> (
    None
):
    assert broker_unavailable(_nack()) and refused_by_broker(_nack())
    assert broker_unavailable(TimeoutError()) and not refused_by_broker(TimeoutError())
    assert broker_unavailable(ChannelInvalidStateError("closed"))
    assert broker_unavailable(BrokerUnavailable("no channel"))
    assert not broker_unavailable(_returned("q")) and not refused_by_broker(_returned("q"))
    missing = ChannelNotFoundEntity(404, "NOT_FOUND - no exchange 'x' in vhost '/'")
    assert not broker_unavailable(missing)
    assert not broker_unavailable(ValueError("cannot encode"))


class _Publisher:
    """A publisher whose answers the test decides per routing key, counting channel replacements and the
    queues it was asked about."""

    def __init__(self, failures: dict[str, BaseException], down: frozenset[str] = frozenset()) -> None:
        self.failures = failures
        self.down = down
        self.published: list[str] = []
        self.replaced = 0
        self.asked: list[str] = []

    async def publish(self, body: bytes, **kwargs: Any) -> None:
        error = self.failures.get(kwargs["routing_key"])
        if error is not None:
            raise error
        self.published.append(kwargs["routing_key"])

    async def replace(self) -> None:
        self.replaced += 1

    async def queue_down(self, queue: str) -> bool:
        self.asked.append(queue)
        return queue in self.down


async def _stage(sessions: async_sessionmaker[AsyncSession], *queues: str) -> None:
    async with sessions() as session:
        for queue in queues:
            await stage_message(session, queue=queue, body=b"{}", message_id=uuid.uuid4(), message_type="t")
        await session.commit()


async def _attempts(engine: AsyncEngine) -> dict[str, tuple[int, bool, bool]]:
    """Per routing key: (attempts, published, parked)."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.text("SELECT routing_key, attempts, published_at IS NOT NULL, parked_at IS NOT NULL FROM outbox")
        )
        return {row[0]: (row[1], row[2], row[3]) for row in rows}


async def _reset(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(sa.text("DELETE FROM outbox"))


async def _due_again(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(sa.text("UPDATE outbox SET available_at = now() WHERE published_at IS NULL"))


async def test_refusals_never_park_a_row_and_each_refused_round_gets_a_new_channel(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    await _reset(engine)
    await _stage(sessions, "nacked", "delay.down", "gone", "fine")
    publisher = _Publisher(
        {"nacked": _nack(), "delay.down": _returned("delay.down"), "gone": _returned("gone")},
        down=frozenset({"delay.down"}),
    )
    relay = OutboxRelay(engine, cast(RabbitBroker, publisher), database_url=database_url, park_after_attempts=3)
    for _ in range(5):
        await relay.drain_once()
        await _due_again(engine)
    rows = await _attempts(engine)
    assert rows["fine"] == (0, True, False)
    assert rows["nacked"] == (0, False, False), "a nack is the broker's refusal, not the row's failure"
    assert rows["delay.down"] == (0, False, False), "its queue exists but its node is down: the broker's"
    assert rows["gone"] == (3, False, True), "a queue that does not exist is the row's own route: parked at 3"
    assert publisher.replaced == 5, "every round with a nack ends with the channel replaced"
    publisher.failures.clear()
    await relay.drain_once()
    assert {k for k, (_, published, _) in (await _attempts(engine)).items() if published} == {
        "fine",
        "nacked",
        "delay.down",
    }


async def test_over_the_real_broker_a_nacked_row_waits_uncounted_on_a_new_channel_and_goes_out_later(
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    broker: RabbitBroker,
    topology: Topology,
    amqp: aio_pika.abc.AbstractRobustConnection,
    database_url: str,
) -> None:
    """A full quorum queue (``x-overflow=reject-publish``, as every work queue) nacks on the real RabbitMQ:
    the row keeps 0 attempts, the next round opens a new channel, and once there is room it is confirmed."""
    await _reset(engine)
    queue_name = topology.queue_name(QueueSpec("work", ()))
    channel = await amqp.channel()
    queue = await channel.declare_queue(
        queue_name,
        durable=True,
        arguments={"x-queue-type": "quorum", "x-max-length": 1, "x-overflow": "reject-publish"},
    )
    for _ in range(2):  # over the limit (more than one ready): the queue refuses from now on
        with contextlib.suppress(DeliveryError):
            await channel.default_exchange.publish(aio_pika.Message(b"{}"), routing_key=queue_name)
    await _stage(sessions, queue_name)
    relay = OutboxRelay(engine, broker, database_url=database_url, park_after_attempts=2)
    publisher = cast(PublishingChannel, relay._publisher)
    for _ in range(4):
        assert await relay.drain_once() == 0, "the full queue nacks"
    async with engine.connect() as conn:
        waiting = (
            await conn.execute(sa.text("SELECT attempts, parked_at, last_error FROM outbox WHERE published_at IS NULL"))
        ).one()
    assert (waiting.attempts, waiting.parked_at, waiting.last_error) == (0, None, None)
    assert publisher.opened == 4, "each round after a nack publishes on a new channel"
    await queue.purge()
    assert await relay.drain_once() == 1, "room again: the waiting row is confirmed"
    async with engine.connect() as conn:
        assert await conn.scalar(sa.text("SELECT count(*) FROM outbox WHERE published_at IS NULL")) == 0
    await channel.close()


async def test_over_the_real_broker_a_row_for_a_missing_queue_is_counted_and_the_question_is_answered_right(
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    broker: RabbitBroker,
    topology: Topology,
    amqp: aio_pika.abc.AbstractRobustConnection,
    database_url: str,
) -> None:
    """``NO_ROUTE`` for a queue that does not exist is the row's own failure; the relay's question (is the queue
    there but its node down?) says no for it and, for a queue that answers, that the return was the moment's."""
    await _reset(engine)
    present = topology.queue_name(QueueSpec("work", ()))
    channel = await amqp.channel()
    await channel.declare_queue(present, durable=True)
    missing = topology.name("never-declared")
    await _stage(sessions, missing)
    relay = OutboxRelay(engine, broker, database_url=database_url)
    publisher = cast(PublishingChannel, relay._publisher)
    assert await relay.drain_once() == 0
    attempts, published, parked = (await _attempts(engine))[missing]
    assert (attempts, published, parked) == (1, False, False)
    assert not await publisher.queue_down(missing)
    assert await publisher.queue_down(present)
    assert publisher.opened == 1, "a return leaves the channel as it is"
    await channel.close()
