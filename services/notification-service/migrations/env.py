"""Alembic environment for notification-service (async engine, URL from `notification-service migrate`)."""

from sqlmodel import SQLModel

import notification_service.adapters.tables  # noqa: F401  (registers the tables)
import spawnpoint_kit.messaging.inbox
import spawnpoint_kit.messaging.outbox  # noqa: F401
from spawnpoint_kit.migrations import run_env

run_env(SQLModel.metadata)
