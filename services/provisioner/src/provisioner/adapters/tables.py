"""provisioner's tables (created by its Alembic migrations).

The rows are SQLModel classes, but the repositories read and write them with the driver's own statements
(``repositories.py``, on ``spawnpoint_kit.rows``), whose ``loaded`` and ``new_row`` build row objects the
way the ORM builds the ones it loads: without the model's ``__init__``, which costs about 0.2 ms per row
here (field by field through SQLAlchemy's instrumentation and SQLModel's validation set-up), thirty
times what a loaded row costs.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlmodel import Column, Field, SQLModel

from ..domain.provisioning import ProvisioningStatus


def _now() -> datetime:
    return datetime.now(UTC)


def _ts(nullable: bool = False) -> Any:
    return Column(sa.DateTime(timezone=True), nullable=nullable)


class ProvisioningRow(SQLModel, table=True):
    """One order's provisioning, and what is being watched: a restart resumes every ``installing`` row."""

    __tablename__ = "provisionings"

    order_id: uuid.UUID = Field(primary_key=True)
    status: ProvisioningStatus = Field(
        sa_column=Column(
            # Stored as its value in a VARCHAR(32) (no database enum type), loaded back as the enum.
            sa.Enum(
                ProvisioningStatus,
                native_enum=False,
                create_constraint=False,
                length=32,
                values_callable=lambda members: [m.value for m in members],
            ),
            nullable=False,
        )
    )
    correlation_id: str = Field(max_length=200)
    paid_event_id: uuid.UUID
    order_snapshot: dict[str, Any] = Field(sa_column=Column(postgresql.JSONB(), nullable=False))
    attempts: int = Field(default=0)
    replay_count: int = Field(default=0)
    broker_retries: int = Field(default=0)
    retry_token: uuid.UUID | None = Field(default=None)
    server_id: int | None = Field(default=None)
    server_uuid: str | None = Field(default=None, max_length=64)
    identifier: str | None = Field(default=None, max_length=64)
    panel_user_id: int | None = Field(default=None)
    failure_reason: str | None = Field(default=None, max_length=64)
    last_error: str | None = Field(default=None, sa_column=Column(sa.Text(), nullable=True))
    install_started_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    install_deadline: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    next_check_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    install_checks: int = Field(default=0)
    refunded_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    """The order's money went back (OrderRefunded): no server is created for it again, and one that exists
    is suspended."""
    suspended_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    """When the panel confirmed the refunded order's server suspended (or that it is gone)."""
    created_at: datetime = Field(default_factory=_now, sa_column=_ts())
    updated_at: datetime = Field(default_factory=_now, sa_column=_ts())


class ServerStateRow(SQLModel, table=True):
    """What the rental wants the order's server to be (``desired_*``, the highest version seen) and what
    the panel was last confirmed to show (``applied_*``); ``domain.server_state`` converges the one to the
    other. ``desired_event`` is the latest DesiredServerStateChanged as it arrived, sent to the work queue
    again when convergence must resume (the install ended, a newer version arrived mid-way)."""

    __tablename__ = "server_states"

    order_id: uuid.UUID = Field(primary_key=True)
    desired_state: str = Field(max_length=16)
    desired_version: int
    desired_reason: str = Field(max_length=32)
    desired_limits: dict[str, Any] = Field(sa_column=Column(postgresql.JSONB(), nullable=False))
    desired_event: dict[str, Any] = Field(sa_column=Column(postgresql.JSONB(), nullable=False))
    applied_state: str | None = Field(default=None, max_length=16)
    applied_version: int = Field(default=0)
    applied_limits: dict[str, Any] | None = Field(default=None, sa_column=Column(postgresql.JSONB(), nullable=True))
    attempts: int = Field(default=0)
    broker_retries: int = Field(default=0)
    replay_count: int = Field(default=0)
    failed_version: int | None = Field(default=None, description="the version dead-lettered, until a replay")
    failure_reason: str | None = Field(default=None, max_length=32)
    last_error: str | None = Field(default=None, sa_column=Column(sa.Text(), nullable=True))
    waiting: str | None = Field(default=None, max_length=16, description="why convergence waits: install, server")
    created_at: datetime = Field(default_factory=_now, sa_column=_ts())
    updated_at: datetime = Field(default_factory=_now, sa_column=_ts())
