"""notification-service's tables (created by its Alembic migrations).

- ``contacts``: who to tell about an order and how (address, locale, time zone, the name to greet them
  by) and what to call things (server, game, plan), from the order's snapshot; the server's panel ids
  from the provisioner's events.
  An operator corrects the address here (``PUT /operator/orders/{id}/email``).
- ``messages``: one row per e-mail (event, kind, recipient role), recorded in the transaction of the
  event's inbox claim, before anything is sent; the sender moves it ``pending`` -> ``sending`` (a lease)
  -> ``sent`` or ``failed`` (a 5xx, dead-lettered) or ``suppressed`` (an optional kind turned off).
- ``preferences``: a customer's choice about optional e-mails.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlmodel import Column, Field, SQLModel


def _now() -> datetime:
    return datetime.now(UTC)


def _at() -> Any:
    return Field(default_factory=_now, sa_column=Column(sa.DateTime(timezone=True), nullable=False))


class MessageStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    SUPPRESSED = "suppressed"


class ContactRow(SQLModel, table=True):
    __tablename__ = "contacts"

    order_id: uuid.UUID = Field(primary_key=True)
    user_id: str = Field(max_length=200, index=True)
    email: str = Field(max_length=320)
    email_corrected_at: datetime | None = Field(
        default=None, sa_column=Column(sa.DateTime(timezone=True), nullable=True)
    )
    locale: str = Field(default="en", max_length=16)
    time_zone: str = Field(default="UTC", max_length=64)
    customer_name: str | None = Field(default=None, max_length=100)
    server_name: str = Field(max_length=200)
    game_name: str = Field(max_length=200)
    plan_name: str = Field(max_length=200)
    panel_server_id: int | None = Field(default=None)
    identifier: str | None = Field(default=None, max_length=64)
    updated_at: datetime = _at()


class MessageRow(SQLModel, table=True):
    __tablename__ = "messages"
    __table_args__ = (
        sa.UniqueConstraint("event_id", "kind", "role", name="uq_messages_event_kind_role"),
        sa.Index("ix_messages_due", "status", "next_attempt_at"),
        sa.Index("ix_messages_recipient_sent", "recipient", "sent_at"),
    )

    id: uuid.UUID = Field(primary_key=True)
    event_id: uuid.UUID
    event_type: str = Field(max_length=64)
    order_id: uuid.UUID = Field(index=True)
    kind: str = Field(max_length=64)
    role: str = Field(max_length=16)
    optional: bool = Field(default=False)
    status: MessageStatus = Field(sa_column=Column(sa.String(16), nullable=False))
    recipient: str | None = Field(default=None, max_length=320)
    message_id: str | None = Field(default=None, max_length=300)
    subject: str | None = Field(default=None, max_length=500)
    locale: str | None = Field(default=None, max_length=16)
    facts: dict[str, Any] = Field(sa_column=Column(postgresql.JSONB(), nullable=False))
    event_body: bytes = Field(sa_column=Column(sa.LargeBinary(), nullable=False))
    """The event as it arrived, for the dead-letter copy a permanent refusal puts in the DLQ."""
    occurred_at: datetime = Field(sa_column=Column(sa.DateTime(timezone=True), nullable=False))
    attempts: int = Field(default=0)
    next_attempt_at: datetime = _at()
    last_error: str | None = Field(default=None, sa_column=Column(sa.Text(), nullable=True))
    failure_class: str | None = Field(default=None, max_length=16)
    replays: int = Field(default=0)
    created_at: datetime = _at()
    sent_at: datetime | None = Field(default=None, sa_column=Column(sa.DateTime(timezone=True), nullable=True))
    updated_at: datetime = _at()


class PreferenceRow(SQLModel, table=True):
    __tablename__ = "preferences"

    user_id: str = Field(primary_key=True, max_length=200)
    optional_emails: bool = Field(default=True)
    updated_at: datetime = _at()
