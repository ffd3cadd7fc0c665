"""notification-service's own tests: unit tests with the in-memory unit of work (no database, no broker),
component tests of the repositories on a throw-away PostgreSQL database migrated by the service's own
migrations (dropped at the end of the session)."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from notification_service.service_layer.unit_of_work import SqlNotificationUnitOfWork
from spawnpoint_kit.db import drop_database, make_engine, make_session_factory, prepare_database
from spawnpoint_kit.messaging.topology import Topology

# --import-mode=importlib does not put this folder on sys.path; the helpers module lives here.
sys.path.insert(0, str(Path(__file__).parent))

ALEMBIC_INI = Path(__file__).resolve().parents[1] / "alembic.ini"


@pytest.fixture(scope="session")
async def sql_unit_of_work() -> AsyncIterator[Callable[[], SqlNotificationUnitOfWork]]:
    """A throw-away database on the running PostgreSQL, migrated with the service's own migrations."""
    url = f"{os.environ['SPAWNPOINT_PG_URL']}/sp_test_notifications_{uuid.uuid4().hex[:8]}"
    await prepare_database(ALEMBIC_INI, url)
    engine = make_engine(url, pool_size=4)
    sessions = make_session_factory(engine)
    try:
        yield lambda: SqlNotificationUnitOfWork(sessions, Topology("t."))
    finally:
        await engine.dispose()
        await drop_database(url)
