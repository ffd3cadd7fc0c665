"""The hot paths' driver statements (``db.driver_connection``) run in the session's transaction: they commit
and roll back with the ORM's writes, and their errors reach callers as SQLAlchemy's."""

from __future__ import annotations

import uuid

import asyncpg
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from spawnpoint_kit.db import (
    as_sqlalchemy_errors,
    asyncpg_dsn,
    database_unreachable,
    driver_connection,
    execute_sql,
    make_engine,
    make_session_factory,
)
from spawnpoint_kit.messaging import inbox
from spawnpoint_kit.testing import eventually

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


async def test_a_pooled_connection_the_database_dropped_is_an_outage_and_is_not_handed_out_again(
    database_url: str,
) -> None:
    """A database restart drops the connections sitting in the pool. The first driver statement on one is
    an outage (``database_unreachable``: a 503, a requeued message), never an unhandled error, and the pool
    does not hand that connection out again."""
    engine = make_engine(database_url, pool_size=1)
    sessions = make_session_factory(engine)
    try:
        async with sessions() as session:
            dropped = await driver_connection(session)
            await session.commit()
        admin = await asyncpg.connect(asyncpg_dsn(database_url))
        try:
            await admin.execute("SELECT pg_terminate_backend($1)", dropped.get_server_pid())
        finally:
            await admin.close()

        async def closed() -> bool:
            return bool(dropped.is_closed())

        await eventually(closed, timeout=10, what="the client to see the connection dropped")
        with pytest.raises(sa.exc.DBAPIError) as raised:  # the type the HTTP layer answers 503 for
            async with sessions() as session:
                await driver_connection(session)
        assert raised.value.connection_invalidated
        assert database_unreachable(raised.value)
        async with sessions() as session:
            connection = await driver_connection(session)
            assert connection is not dropped
            assert await connection.fetchval("SELECT 1") == 1
    finally:
        await engine.dispose()
