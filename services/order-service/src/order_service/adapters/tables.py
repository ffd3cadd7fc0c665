"""order-service's tables (created by its Alembic migrations)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlmodel import Column, Field, SQLModel

from spawnpoint_contracts import Billing

from ..domain.order import OrderStatus


def _now() -> datetime:
    return datetime.now(UTC)


class OrderRow(SQLModel, table=True):
    __tablename__ = "orders"

    id: uuid.UUID = Field(primary_key=True)
    user_id: str = Field(max_length=200, index=True)
    email: str = Field(max_length=320)
    status: OrderStatus = Field(sa_column=Column(sa.String(32), nullable=False))
    game_id: str = Field(max_length=64)
    plan_id: str = Field(max_length=64)
    server_name: str = Field(max_length=200)
    period_id: str = Field(default="once-30d", max_length=40)
    billing_kind: str = Field(default="fixed_term", max_length=16)
    billing_interval: str | None = Field(default=None, max_length=8)
    billing_interval_count: int = Field(default=1)
    # No column default: SQLAlchemy would put one in place of a subscription's None.
    billing_term_days: int | None = Field(default=30, sa_column=Column(sa.Integer(), nullable=True))
    amount: int
    currency: str = Field(max_length=3)
    locale: str = Field(default="en", max_length=16)
    time_zone: str = Field(default="UTC", max_length=64)
    customer_name: str | None = Field(default=None, max_length=100)
    """The token's display name when the order was placed (``Principal.name``); None without one."""
    snapshot: dict[str, Any] = Field(sa_column=Column(postgresql.JSONB(), nullable=False))
    correlation_id: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=_now, sa_column=Column(sa.DateTime(timezone=True), nullable=False))
    updated_at: datetime = Field(default_factory=_now, sa_column=Column(sa.DateTime(timezone=True), nullable=False))

    def billing(self) -> Billing:
        """What was bought (rows from before periods read as the 30-day fixed term, migration 0003)."""
        return Billing.model_validate(
            {
                "kind": self.billing_kind,
                "interval": self.billing_interval,
                "interval_count": self.billing_interval_count,
                "term_days": self.billing_term_days,
                "period_id": self.period_id,
            }
        )


class IdempotencyKeyRow(SQLModel, table=True):
    """A client's ``Idempotency-Key`` for POST /orders, stored in the same transaction as the order, so a
    failed request does not use the key up and a repeated one finds its order."""

    __tablename__ = "order_idempotency_keys"

    user_id: str = Field(primary_key=True, max_length=200)
    key: str = Field(primary_key=True, max_length=255)
    request_hash: str = Field(max_length=64)
    order_id: uuid.UUID
    created_at: datetime = Field(default_factory=_now, sa_column=Column(sa.DateTime(timezone=True), nullable=False))
