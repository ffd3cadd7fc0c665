"""Component fixtures for the messaging kit: a throw-away database on the running PostgreSQL and a unique
namespace on the running RabbitMQ (no Docker engine here, so no testcontainers)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import aio_pika
import pytest
from faststream.rabbit import RabbitBroker
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

import spawnpoint_kit.messaging.inbox
import spawnpoint_kit.messaging.outbox  # noqa: F401  (register the tables)
from spawnpoint_kit.db import drop_database, ensure_database, make_engine, make_session_factory
from spawnpoint_kit.messaging.broker import make_broker
from spawnpoint_kit.messaging.specs import QueueSpec
from spawnpoint_kit.messaging.topology import Topology
from spawnpoint_kit.settings import CommonSettings


@pytest.fixture(scope="session")
def run_id() -> str:
    return uuid.uuid4().hex[:8]


@pytest.fixture(scope="session")
def database_url(run_id: str) -> str:
    return f"{os.environ['SPAWNPOINT_PG_URL']}/sp_test_kit_{run_id}"  # conftest.py at the root sets it


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    await ensure_database(database_url)
    engine = make_engine(database_url)
    async with engine.begin() as conn:
        await conn.run_sync(SQLModel.metadata.create_all)  # tests only; services use Alembic
    yield engine
    await engine.dispose()
    await drop_database(database_url)


@pytest.fixture(scope="session")
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return make_session_factory(engine)


TEST_QUEUES = ("sink", "poison", "work")
"""The queue names the kit's tests declare in their namespace (deleted afterwards)."""


@pytest.fixture
async def topology(settings: CommonSettings) -> AsyncIterator[Topology]:
    """A namespace of this test's own, removed from the broker afterwards."""
    topology = Topology(namespace=f"tk{uuid.uuid4().hex[:8]}.")
    yield topology
    connection = await aio_pika.connect(settings.broker_url.get_secret_value())
    try:
        channel = await connection.channel()
        for name in TEST_QUEUES:
            spec = QueueSpec(name, ())
            for queue in (topology.queue_name(spec), topology.dead_letter_queue(spec).name):
                await channel.queue_delete(queue)  # no error when absent (RabbitMQ 3.10+)
        for exchange in (topology.events_exchange.name, topology.dead_letter_exchange.name):
            await channel.exchange_delete(exchange)
    finally:
        await connection.close()


@pytest.fixture
def settings() -> CommonSettings:
    return CommonSettings()


@pytest.fixture
async def broker(settings: CommonSettings) -> AsyncIterator[RabbitBroker]:
    broker = make_broker(settings, service="kit-tests")
    await broker.connect()
    yield broker
    await broker.stop()


@pytest.fixture
async def amqp(settings: CommonSettings) -> AsyncIterator[aio_pika.abc.AbstractRobustConnection]:
    connection = await aio_pika.connect_robust(settings.broker_url.get_secret_value())
    yield connection
    await connection.close()


async def drain(queue: aio_pika.abc.AbstractQueue) -> list[aio_pika.abc.AbstractIncomingMessage]:
    out = []
    while (message := await queue.get(no_ack=True, fail=False)) is not None:
        out.append(message)
    return out
