"""The hot paths' driver statements (``db.driver_connection``) run in the session's transaction: they commit
and roll back with the ORM's writes, and their errors reach callers as SQLAlchemy's."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from spawnpoint_kit.db import as_sqlalchemy_errors, driver_connection, execute_sql
from spawnpoint_kit.messaging import inbox

pytestmark = pytest.mark.component


async def _claimed(engine: AsyncEngine, key: str) -> int:
    async with engine.connect() as conn:
        found = await conn.execute(sa.text("SELECT count(*) FROM inbox WHERE message_key = :k"), {"k": key})
        return int(found.scalar_one())


async def test_a_driver_statement_as_the_first_one_is_rolled_back_with_the_session(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    key = f"driver-{uuid.uuid4()}"
    async with sessions() as session:
        assert await inbox.claim(session, "driver-test", key)
        assert not await inbox.claim(session, "driver-test", key)
        await session.rollback()
    assert await _claimed(engine, key) == 0


async def test_a_driver_statement_commits_with_the_orm_statements_of_its_session(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    key = f"driver-{uuid.uuid4()}"
    async with sessions() as session:
        await execute_sql(session, sa.text("SELECT 1"))
        assert await inbox.claim(session, "driver-test", key)
        connection = await driver_connection(session)
        assert connection.is_in_transaction()
        await session.commit()
    assert await _claimed(engine, key) == 1


async def test_a_driver_statement_error_is_raised_as_sqlalchemy_would(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session:
        connection = await driver_connection(session)
        with pytest.raises(sa.exc.IntegrityError), as_sqlalchemy_errors("insert"):
            await connection.execute("INSERT INTO inbox (consumer, message_key) VALUES (NULL, 'x')")
        await session.rollback()
        connection = await driver_connection(session)
        with pytest.raises(sa.exc.DBAPIError), as_sqlalchemy_errors("select"):
            await connection.execute("SELECT * FROM no_such_table")


async def test_the_driver_connection_is_asked_for_again_in_the_session_s_next_transaction(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    key = f"driver-{uuid.uuid4()}"
    async with sessions() as session:
        first = await driver_connection(session)
        assert await driver_connection(session) is first, "remembered within the transaction"
        await session.rollback()
        again = await driver_connection(session)
        assert again.is_in_transaction(), "a new transaction begun, not the ended one reused"
        assert await inbox.claim(session, "driver-test", key)
        await session.commit()
    assert await _claimed(engine, key) == 1
