"""The relay's linger: a lone row after an idle round is published at once; rows committed while the relay
lingers after a busy round share the next round (one claim, one mark, one commit)."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any, cast

import pytest
import sqlalchemy as sa
from faststream.rabbit import RabbitBroker
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from spawnpoint_kit.messaging.outbox import stage_message
from spawnpoint_kit.messaging.relay import OutboxRelay

pytestmark = pytest.mark.component


class _Recorder:
    def __init__(self) -> None:
        self.published: list[str] = []

    async def publish(self, body: bytes, **kwargs: Any) -> None:
        self.published.append(kwargs["routing_key"])


class _CountingRelay(OutboxRelay):
    """The real relay, remembering how many rows each round published."""

    rounds: list[int]

    async def drain_once(self) -> int:
        published = await super().drain_once()
        if published:
            self.rounds.append(published)
        return published


async def _stage_one(sessions: async_sessionmaker[AsyncSession], queue: str) -> None:
    async with sessions() as session:
        await stage_message(session, queue=queue, body=b"{}", message_id=uuid.uuid4(), message_type="t")
        await session.commit()


async def _until(condition: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "not within the deadline"
        await asyncio.sleep(0.01)


async def _reset(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(sa.text("DELETE FROM outbox"))


async def test_after_an_idle_round_a_lone_row_is_published_without_lingering(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    await _reset(engine)
    recorder = _Recorder()
    relay = _CountingRelay(
        engine, cast(RabbitBroker, recorder), database_url=database_url, poll_seconds=0.2, linger_seconds=30
    )
    relay.rounds = []
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        await _stage_one(sessions, "lone")
        await _until(lambda: relay.rounds == [1], 5)  # far less than the 30 s linger: nothing waited
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def test_rows_committed_while_the_relay_lingers_after_a_busy_round_share_the_next_round(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    await _reset(engine)
    recorder = _Recorder()
    relay = _CountingRelay(
        engine, cast(RabbitBroker, recorder), database_url=database_url, poll_seconds=0.2, linger_seconds=1.5
    )
    relay.rounds = []
    await _stage_one(sessions, "first")
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        await _until(lambda: relay.rounds == [1], 5)
        for queue in ("second", "third", "fourth"):
            await _stage_one(sessions, queue)  # committed while the relay lingers after its busy round
        await _until(lambda: sum(relay.rounds) == 4, 10)
        assert relay.rounds == [1, 3], "one round for the three rows committed during the linger"
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
