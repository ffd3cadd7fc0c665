"""Database plumbing: the async engine, sessions, creating the database and running its migrations.

Every service owns one PostgreSQL database. Tables are created only by Alembic migrations (never
``create_all`` in service code); ``prepare_database`` creates the database when it is missing and
upgrades it to head, and runs before a service starts (``<service> migrate`` or the dev launcher).
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import asyncpg
import sqlalchemy.event
import sqlalchemy.exc
from alembic import command
from alembic.config import Config
from sqlalchemy import CursorResult, TextClause
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session
from sqlmodel.ext.asyncio.session import AsyncSession


def make_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    """A pool of exactly ``pool_size`` connections (no overflow): the number of connections a service can
    open is known in advance, so a deployment can size PostgreSQL's ``max_connections`` for every replica
    (a burst waits for a connection instead of failing with "too many clients").

    No ``pool_pre_ping``: it costs a round trip on every checkout (measured 1.4 ms of CPU per transaction
    here, about 14% of an order's total). A connection broken by a database restart fails its next use
    instead; SQLAlchemy then discards the whole pool, the request answers 503 (the client retries) and a
    consumer requeues its message, so nothing is lost.

    ``hide_parameters``: an error's text (logged, and in tracebacks) never carries the statement's bound
    values, which hold customers' e-mails and game settings, passwords included."""
    return create_async_engine(
        url,
        hide_parameters=True,
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=30,
        pool_pre_ping=False,
        pool_recycle=1800,
    )


_READERS: weakref.WeakKeyDictionary[AsyncEngine, AsyncEngine] = weakref.WeakKeyDictionary()


def reader(engine: AsyncEngine) -> AsyncEngine:
    """The same pool, for statements that only read: each runs on its own (PostgreSQL's autocommit), with no
    ``BEGIN`` before it and no ``ROLLBACK`` when the connection goes back to the pool. A one-row read is one
    round trip instead of three (decision 47). Only for reads that need no consistent view across
    statements: two statements on it may see different commits."""
    found = _READERS.get(engine)
    if found is None:
        found = _READERS[engine] = engine.execution_options(isolation_level="AUTOCOMMIT")
    return found


def make_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


def asyncpg_dsn(url: str) -> str:
    """The same URL in the form asyncpg accepts (no ``+asyncpg`` driver suffix)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def ensure_database(url: str) -> None:
    """Create the URL's database if it does not exist yet (connects to the ``postgres`` database)."""
    parsed = make_url(url)
    name = parsed.database
    if not name:
        raise ValueError("database URL has no database name")
    admin = parsed.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    conn = await asyncpg.connect(admin)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            with contextlib.suppress(asyncpg.DuplicateDatabaseError):
                await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def drop_database(url: str) -> None:
    """Drop the URL's database (tests only), closing other sessions first."""
    parsed = make_url(url)
    admin = parsed.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)')
    finally:
        await conn.close()


def alembic_config(alembic_ini: Path, url: str) -> Config:
    cfg = Config(str(alembic_ini))
    cfg.set_main_option("script_location", str(alembic_ini.parent / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["configure_logger"] = False
    return cfg


def upgrade_to_head(alembic_ini: Path, url: str) -> None:
    """Run the service's Alembic migrations up to head (synchronous: call it outside an event loop or
    through ``asyncio.to_thread``)."""
    command.upgrade(alembic_config(alembic_ini, url), "head")


async def prepare_database(alembic_ini: Path, url: str) -> None:
    """Create the database if needed and migrate it to head."""
    await ensure_database(url)
    await asyncio.to_thread(upgrade_to_head, alembic_ini, url)


async def execute_sql(
    session: AsyncSession, sql: TextClause, params: Mapping[str, Any] | None = None
) -> CursorResult[Any]:
    """Run raw SQL on the session's connection (inside its transaction). SQLModel's ``exec`` is typed for
    ORM statements only, and its ``execute`` is deprecated."""
    connection = await session.connection()
    return await connection.execute(sql, dict(params or {}))


async def driver_connection(session: AsyncSession) -> asyncpg.Connection:
    """The asyncpg connection under ``session``, inside the session's transaction (begun here if no statement
    began it yet), for the hot paths' statements (the inbox claim, the outbox rows, the projection).

    Why: a statement through SQLAlchemy costs 0.3 to 0.6 ms of CPU here (cache key, compiled-statement
    lookup, execution context, result rows), asyncpg's own ``fetch`` with its prepared-statement cache about a
    tenth of that. The statement still runs on the same connection and in the same transaction, so it commits
    or rolls back with the ORM's writes. SQLAlchemy's asyncpg adapter begins its transaction lazily on the
    first statement; ``_start_transaction`` is what that first statement would call (pinned by
    ``tests/test_driver_connection.py``: a driver statement is rolled back with the session).

    The connection is remembered in ``session.info`` until the session's transaction ends (a hot path asks
    for it several times per transaction, and each ``session.connection()`` costs a trip through greenlet)."""
    cached: asyncpg.Connection | None = session.info.get(_DRIVER)
    if cached is not None:
        return cached
    connection = await session.connection()
    fairy = await connection.get_raw_connection()
    adapted: Any = fairy.dbapi_connection
    if adapted._transaction is None:
        try:
            await adapted._start_transaction()
        except Exception as exc:
            if not connection_closed(exc):
                raise
            # A pooled connection the database dropped (a restart). What SQLAlchemy does for its own first
            # statement: the connection is invalidated, so the pool never hands it out again, and the error
            # is its ``DBAPIError``, marked ``connection_invalidated``: an outage (a 503, a requeued message).
            await connection.invalidate(exc)
            dialect = connection.dialect
            raise sqlalchemy.exc.DBAPIError.instance(
                "BEGIN",
                None,
                exc,
                dialect.loaded_dbapi.Error,
                hide_parameters=True,
                connection_invalidated=True,
                dialect=dialect,
            ) from exc
    driver: asyncpg.Connection = fairy.driver_connection
    session.info[_DRIVER] = driver
    return driver


_DRIVER = "spawnpoint.driver_connection"


@sqlalchemy.event.listens_for(Session, "after_transaction_end")
def _forget_driver(session: Session, transaction: Any) -> None:
    """A session's next transaction may run on another pooled connection: ask again then."""
    session.info.pop(_DRIVER, None)


@contextlib.contextmanager
def as_sqlalchemy_errors(statement: str) -> Iterator[None]:
    """Raise a driver statement's error as SQLAlchemy would have (``IntegrityError`` for a constraint,
    ``DBAPIError`` otherwise, the asyncpg error as its cause), so callers of a hot path that moved to
    ``driver_connection`` catch what they caught before. A connection that is gone stays as it is
    (``database_unreachable`` recognises both)."""
    try:
        yield
    except asyncpg.IntegrityConstraintViolationError as exc:
        raise sqlalchemy.exc.IntegrityError(statement, None, exc, hide_parameters=True) from exc
    except asyncpg.PostgresError as exc:
        raise sqlalchemy.exc.DBAPIError(statement, None, exc, hide_parameters=True) from exc


UNREACHABLE_ERRORS: tuple[type[Exception], ...] = (
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.AdminShutdownError,
    OSError,
)


def connection_closed(exc: BaseException) -> bool:
    """asyncpg's answer for a connection that is already closed (dropped by a database restart while it sat
    in the pool), anywhere in ``exc``'s causes. Other ``InterfaceError``s are misuse, not an outage."""
    return any(_closed(cause) for cause in _causes(exc))


def database_unreachable(exc: BaseException) -> bool:
    """The database refused or dropped the connection, or the pool had none to give: worth retrying,
    unlike an error in the statement itself."""
    if isinstance(exc, sqlalchemy.exc.TimeoutError) or getattr(exc, "connection_invalidated", False):
        return True
    return any(isinstance(cause, UNREACHABLE_ERRORS) or _closed(cause) for cause in _causes(exc))


def _closed(exc: BaseException) -> bool:
    return isinstance(exc, asyncpg.exceptions.InterfaceError) and "connection is closed" in str(exc)


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and the exceptions it was raised from, outermost first."""
    cause: BaseException | None = exc
    while cause is not None:
        yield cause
        cause = cause.__cause__
