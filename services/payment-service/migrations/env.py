"""Alembic environment for payment-service (async engine, URL from `payment-service migrate`)."""

from sqlmodel import SQLModel

import payment_service.adapters.tables  # noqa: F401  (registers the tables)
import spawnpoint_kit.messaging.inbox
import spawnpoint_kit.messaging.outbox  # noqa: F401
from spawnpoint_kit.migrations import run_env

run_env(SQLModel.metadata)
