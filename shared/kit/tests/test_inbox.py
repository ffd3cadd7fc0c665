"""The inbox deduplicates within the handler's transaction, and a rollback frees the key again."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from spawnpoint_kit.messaging import inbox

pytestmark = pytest.mark.component


async def test_a_second_claim_is_refused_and_a_rolled_back_claim_is_not_kept(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    key = str(uuid.uuid4())
    async with sessions() as session:
        assert await inbox.claim(session, "c", key)
        await session.rollback()
    async with sessions() as session:
        assert await inbox.claim(session, "c", key)
        await session.commit()
    async with sessions() as session:
        assert not await inbox.claim(session, "c", key)
        assert await inbox.claim(session, "another-consumer", key)
        await session.commit()
