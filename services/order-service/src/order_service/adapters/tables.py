"""order-service's tables (created by its Alembic migrations)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlmodel import Column, Field, SQLModel

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
    amount: int
    currency: str = Field(max_length=3)
    snapshot: dict[str, Any] = Field(sa_column=Column(postgresql.JSONB(), nullable=False))
    correlation_id: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=_now, sa_column=Column(sa.DateTime(timezone=True), nullable=False))
    updated_at: datetime = Field(default_factory=_now, sa_column=Column(sa.DateTime(timezone=True), nullable=False))


class IdempotencyKeyRow(SQLModel, table=True):
    """A client's ``Idempotency-Key`` for POST /orders, stored in the same transaction as the order, so a
    failed request does not use the key up and a repeated one finds its order."""

    __tablename__ = "order_idempotency_keys"

    user_id: str = Field(primary_key=True, max_length=200)
    key: str = Field(primary_key=True, max_length=255)
    request_hash: str = Field(max_length=64)
    order_id: uuid.UUID
    created_at: datetime = Field(default_factory=_now, sa_column=Column(sa.DateTime(timezone=True), nullable=False))
