"""status-service's tables: every applied event (the source of truth) and the read model built from them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlmodel import Column, Field, SQLModel


def _ts(nullable: bool = False) -> Any:
    return Column(sa.DateTime(timezone=True), nullable=nullable)


class OrderEventRow(SQLModel, table=True):
    """One event an order received, as it arrived. ``rebuild`` recomputes the read model from these."""

    __tablename__ = "order_events"

    event_id: uuid.UUID = Field(primary_key=True)
    order_id: uuid.UUID = Field(index=True)
    event_type: str = Field(max_length=100)
    occurred_at: datetime = Field(sa_column=_ts())
    body: dict[str, Any] = Field(sa_column=Column(postgresql.JSONB(), nullable=False))
    received_at: datetime = Field(default_factory=lambda: datetime.now(UTC), sa_column=_ts())


class OrderStatusRow(SQLModel, table=True):
    """The read model the polling API serves (one row per order)."""

    __tablename__ = "order_status"

    order_id: uuid.UUID = Field(primary_key=True)
    user_id: str | None = Field(default=None, max_length=200, index=True)
    status: str = Field(max_length=16)
    phase: str = Field(max_length=32)
    message: str = Field(max_length=500)
    server_id: str | None = Field(default=None, max_length=64)
    connect_path: str | None = Field(default=None, max_length=200)
    updated_at: datetime = Field(sa_column=_ts())
    last_event_id: uuid.UUID
    events_applied: int
    version: int = Field(default=1, description="Bumped on every visible change (drives the ETag).")
