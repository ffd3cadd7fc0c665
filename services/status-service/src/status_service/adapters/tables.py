"""status-service's tables: every event received (the source of truth), the read model computed from
them, and the log of the read model's visible changes.

- ``order_events``: one row per distinct event, as it arrived (``seq`` is the arrival order, ``deliveries``
  counts redeliveries and duplicates). ``rebuild`` recomputes everything else from these rows alone.
- ``order_status``: one row per order, what the polling API serves (``rental`` holds the body's rental
  object). ``version`` goes up by one on every change a customer can see; the event stream uses it as its
  event id.
- ``order_status_changes``: every version of every order, so a stream that reconnects with
  ``Last-Event-ID`` receives exactly the changes it missed, from any status-service process.
"""

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
    """One event an order received, as it arrived."""

    __tablename__ = "order_events"

    event_id: uuid.UUID = Field(primary_key=True)
    order_id: uuid.UUID = Field(index=True)
    event_type: str = Field(max_length=100)
    occurred_at: datetime = Field(sa_column=_ts())
    body: dict[str, Any] = Field(sa_column=Column(postgresql.JSONB(), nullable=False))
    received_at: datetime = Field(default_factory=lambda: datetime.now(UTC), sa_column=_ts())
    seq: int | None = Field(
        default=None,
        sa_column=Column(sa.BigInteger(), sa.Identity(always=False), nullable=False, unique=True),
        description="Arrival order across all orders.",
    )
    deliveries: int = Field(default=1, description="How many times it was delivered (duplicates included).")


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
    rental: dict[str, Any] | None = Field(
        default=None,
        sa_column=Column(postgresql.JSONB(), nullable=True),
        description="The status body's ``rental`` object; null before the order's first RentalChanged.",
    )
    decided_by: uuid.UUID | None = Field(default=None, description="The event that put the order in its phase.")
    last_event_id: uuid.UUID
    events_applied: int
    version: int = Field(default=1, description="Bumped on every visible change (the stream's event id).")


class OrderStatusChangeRow(SQLModel, table=True):
    """One visible change of an order's read model: the state as the customer saw it from then on."""

    __tablename__ = "order_status_changes"

    order_id: uuid.UUID = Field(primary_key=True)
    version: int = Field(primary_key=True)
    user_id: str | None = Field(default=None, max_length=200)
    status: str = Field(max_length=16)
    phase: str = Field(max_length=32)
    message: str = Field(max_length=500)
    server_id: str | None = Field(default=None, max_length=64)
    connect_path: str | None = Field(default=None, max_length=200)
    updated_at: datetime = Field(sa_column=_ts())
    rental: dict[str, Any] | None = Field(default=None, sa_column=Column(postgresql.JSONB(), nullable=True))
    changed_at: datetime = Field(sa_column=_ts(), description="When the change was committed.")
