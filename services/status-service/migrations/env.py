"""Alembic environment for status-service (async engine, URL from `status-service migrate`)."""

from sqlmodel import SQLModel

import spawnpoint_kit.messaging.inbox
import spawnpoint_kit.messaging.outbox  # noqa: F401
import status_service.adapters.tables  # noqa: F401  (registers the tables)
from spawnpoint_kit.migrations import run_env

run_env(SQLModel.metadata)
