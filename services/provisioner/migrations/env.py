"""Alembic environment for provisioner (async engine, URL from `provisioner migrate`)."""

import provisioner.adapters.tables  # noqa: F401  (registers the tables)
import spawnpoint_kit.messaging.inbox
import spawnpoint_kit.messaging.outbox  # noqa: F401
from spawnpoint_kit.migrations import run_env
from sqlmodel import SQLModel

run_env(SQLModel.metadata)
