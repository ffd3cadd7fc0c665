"""Alembic environment for order-service (async engine, URL from `order-service migrate`)."""

from sqlmodel import SQLModel

import order_service.adapters.tables  # noqa: F401  (registers the tables)
import spawnpoint_kit.messaging.inbox
import spawnpoint_kit.messaging.outbox  # noqa: F401
from spawnpoint_kit.migrations import run_env

run_env(SQLModel.metadata)
