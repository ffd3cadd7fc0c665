"""Fixtures for status-service's own tests.

Unit tests need nothing. Component tests get a throw-away database on the running PostgreSQL, migrated
with the service's own Alembic migrations (no Docker engine here, so no testcontainers), and dropped at
the end of the session.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from spawnpoint_kit.db import drop_database, make_engine, make_session_factory, prepare_database
from spawnpoint_kit.messaging.topology import Topology
from status_service.service_layer.unit_of_work import SqlStatusUnitOfWork

# --import-mode=importlib does not put this folder on sys.path; the helpers module lives here.
sys.path.insert(0, str(Path(__file__).parent))

ALEMBIC_INI = Path(__file__).resolve().parents[1] / "alembic.ini"


@pytest.fixture(scope="session")
def database_url() -> str:
    return f"{os.environ['SPAWNPOINT_PG_URL']}/sp_test_status_{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    await prepare_database(ALEMBIC_INI, database_url)
    engine = make_engine(database_url, pool_size=5)
    yield engine
    await engine.dispose()
    await drop_database(database_url)


@pytest.fixture(scope="session")
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return make_session_factory(engine)


@pytest.fixture(scope="session")
def unit_of_work(sessions: async_sessionmaker[AsyncSession]) -> Callable[[], SqlStatusUnitOfWork]:
    """What the service's consumer and ``rebuild`` open (status-service publishes nothing: no namespace)."""

    def make() -> SqlStatusUnitOfWork:
        return SqlStatusUnitOfWork(sessions, Topology())

    return make
