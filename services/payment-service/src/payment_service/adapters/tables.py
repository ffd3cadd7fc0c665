"""payment-service's tables (created by its Alembic migrations)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlmodel import Column, Field, SQLModel

from spawnpoint_contracts import RentalPhase

from ..domain.payment import PaymentStatus
from ..domain.refunds import RefundState
from ..domain.stripe_events import StoredEventStatus


def _now() -> datetime:
    return datetime.now(UTC)


def _status(enum: type[StrEnum], length: int) -> Any:
    """A status column holding the enum's values as plain text (the migrations made them VARCHARs)."""
    return Column(
        sa.Enum(
            enum,
            native_enum=False,
            length=length,
            create_constraint=False,
            values_callable=lambda members: [member.value for member in members],
        ),
        nullable=False,
    )


def _ts(nullable: bool = False) -> Any:
    return Column(sa.DateTime(timezone=True), nullable=nullable)


class PaymentRow(SQLModel, table=True):
    """One order's payment. The order snapshot is what OrderPaid carries to the provisioner."""

    __tablename__ = "payments"

    order_id: uuid.UUID = Field(primary_key=True)
    user_id: str = Field(max_length=200, index=True)
    email: str = Field(max_length=320)
    amount: int
    currency: str = Field(max_length=3)
    status: PaymentStatus = Field(sa_column=_status(PaymentStatus, 32))
    order_snapshot: dict[str, Any] = Field(sa_column=Column(postgresql.JSONB(), nullable=False))
    correlation_id: str = Field(max_length=200)
    paid_session_id: str | None = Field(default=None, max_length=255)
    payment_intent: str | None = Field(default=None, max_length=255)
    fulfilled_via: str | None = Field(default=None, max_length=32)
    paid_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    provision_failed_at: datetime | None = Field(
        default=None, sa_column=_ts(nullable=True), description="occurred_at of the latest ProvisionFailed"
    )
    provision_failure_reason: str | None = Field(default=None, max_length=64)
    provision_failure_replayable: bool | None = Field(default=None)
    provision_progress_at: datetime | None = Field(
        default=None,
        sa_column=_ts(nullable=True),
        description="occurred_at of the latest ServerCreated, ServerInstalled or ProvisioningReplayed",
    )
    server_installed_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    swept_at: datetime | None = Field(
        default=None, sa_column=_ts(nullable=True), description="when the sweeper last asked Stripe"
    )
    created_at: datetime = Field(default_factory=_now, sa_column=_ts())
    updated_at: datetime = Field(default_factory=_now, sa_column=_ts())


class CheckoutSessionRow(SQLModel, table=True):
    """A Checkout Session we asked Stripe for. Every parameter (including ``expires_at``) is stored before
    the call, so a retry re-sends the same request under the same idempotency key."""

    __tablename__ = "checkout_sessions"

    id: uuid.UUID = Field(primary_key=True, default_factory=uuid.uuid4)
    order_id: uuid.UUID = Field(index=True)
    attempt: int
    idempotency_key: str = Field(max_length=255)
    params: dict[str, Any] = Field(sa_column=Column(postgresql.JSONB(), nullable=False))
    stripe_session_id: str | None = Field(default=None, max_length=255, unique=True)
    client_secret: str | None = Field(default=None, max_length=500)
    status: str = Field(default="creating", max_length=32)
    expires_at: datetime = Field(sa_column=_ts())
    created_at: datetime = Field(default_factory=_now, sa_column=_ts())


class StripeEventRow(SQLModel, table=True):
    """A verified Stripe event, stored before the webhook answers. The event id is the dedup key; the
    webhook worker processes pending rows and retries the ones that cannot be handled yet."""

    __tablename__ = "stripe_events"

    id: str = Field(primary_key=True, max_length=255)
    type: str = Field(max_length=100)
    payload: dict[str, Any] = Field(sa_column=Column(postgresql.JSONB(), nullable=False))
    session_id: str | None = Field(default=None, max_length=255)
    subscription_id: str | None = Field(
        default=None, max_length=255, description="for invoice and subscription events: the subscription to read"
    )
    order_id: uuid.UUID | None = Field(default=None, index=True)
    status: StoredEventStatus = Field(
        default=StoredEventStatus.PENDING,
        sa_column=_status(StoredEventStatus, 32),
        description="pending, processed or abandoned (``domain.stripe_events.STORED_EVENT``)",
    )
    outcome: str | None = Field(default=None, max_length=32, description="what applying it did")
    attempts: int = Field(default=0)
    last_error: str | None = Field(default=None, sa_column=Column(sa.Text(), nullable=True))
    received_at: datetime = Field(default_factory=_now, sa_column=_ts())
    next_attempt_at: datetime = Field(default_factory=_now, sa_column=_ts())
    processed_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class RefundRow(SQLModel, table=True):
    """A refund decided by this service, written before Stripe is called (in the transaction that made
    the decision) and executed by the refund worker with the row's idempotency key, so a crash between
    the decision, the Stripe call and its bookkeeping never loses or doubles a refund."""

    __tablename__ = "refunds"

    id: uuid.UUID = Field(primary_key=True, default_factory=uuid.uuid4)
    order_id: uuid.UUID = Field(index=True)
    idempotency_key: str = Field(max_length=255, unique=True)
    kind: str = Field(max_length=16, description="order (the order's payment) or duplicate (an extra payment)")
    reason: str = Field(max_length=64)
    status: RefundState = Field(
        sa_column=_status(RefundState, 16),
        description="scheduled, executing, succeeded, cancelled or failed (``domain.refunds.REFUND``)",
    )
    session_id: str | None = Field(default=None, max_length=255)
    payment_intent: str | None = Field(default=None, max_length=255)
    amount: int
    currency: str = Field(max_length=3)
    cause_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    due_at: datetime = Field(sa_column=_ts())
    lease_until: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    attempts: int = Field(default=0)
    last_error: str | None = Field(default=None, sa_column=Column(sa.Text(), nullable=True))
    stripe_refund_id: str | None = Field(default=None, max_length=255)
    created_at: datetime = Field(default_factory=_now, sa_column=_ts())
    updated_at: datetime = Field(default_factory=_now, sa_column=_ts())
    completed_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class RentalRow(SQLModel, table=True):
    """One order's rental (``domain.rental``): its phase, what was paid for, the deadlines Stripe's state
    implies, and the server state it asks of the panel. ``version`` grows with every change and travels in
    ``RentalChanged``; ``desired_version`` is the version of the latest ``DesiredServerStateChanged``."""

    __tablename__ = "rentals"

    order_id: uuid.UUID = Field(primary_key=True)
    user_id: str = Field(max_length=200, index=True)
    kind: str = Field(max_length=16, description="subscription or fixed_term")
    plan_id: str = Field(max_length=100)
    period_id: str = Field(max_length=40)
    phase: RentalPhase = Field(sa_column=_status(RentalPhase, 32))
    version: int = Field(default=0)
    subscription_id: str | None = Field(default=None, max_length=255, unique=True)
    customer_id: str | None = Field(default=None, max_length=255)
    invoice_id: str | None = Field(default=None, max_length=255)
    paid_through: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    renews_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    ends_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    next_payment_attempt: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    grace_until: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    terminate_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    attempt_count: int = Field(default=0)
    hold: str | None = Field(default=None, max_length=16, description="refunded or disputed (``domain.rental.Hold``)")
    desired_state: str | None = Field(default=None, max_length=16)
    desired_version: int = Field(default=0)
    limits: dict[str, Any] = Field(
        sa_column=Column(postgresql.JSONB(), nullable=False),
        description="The plan's complete server build: {limits, feature_limits}",
    )
    synced_at: datetime | None = Field(
        default=None, sa_column=_ts(nullable=True), description="when Stripe's subscription was last read"
    )
    due_at: datetime | None = Field(
        default=None, sa_column=_ts(nullable=True), description="the next deadline (``domain.rental.next_deadline``)"
    )
    due_kind: str | None = Field(default=None, max_length=32)
    due_lease_until: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    warned_at: datetime | None = Field(
        default=None, sa_column=_ts(nullable=True), description="when the customer was told of the deletion"
    )
    created_at: datetime = Field(default_factory=_now, sa_column=_ts())
    updated_at: datetime = Field(default_factory=_now, sa_column=_ts())


class RentalTransitionRow(SQLModel, table=True):
    """Every move of a rental, with its cause: the rental's history (``spawnctl rental show``)."""

    __tablename__ = "rental_transitions"

    id: uuid.UUID = Field(primary_key=True, default_factory=uuid.uuid4)
    order_id: uuid.UUID = Field(index=True)
    version: int
    from_phase: str = Field(max_length=32)
    to_phase: str = Field(max_length=32)
    cause: str = Field(max_length=32)
    via: str = Field(max_length=32, description="webhook, reconciler, deadline, customer")
    invoice_id: str | None = Field(default=None, max_length=255)
    stripe_event_id: str | None = Field(default=None, max_length=255)
    at: datetime = Field(default_factory=_now, sa_column=_ts())


class StripeCustomerRow(SQLModel, table=True):
    """The Stripe customer of a shop user: created once, reused by every later subscription."""

    __tablename__ = "stripe_customers"

    user_id: str = Field(primary_key=True, max_length=200)
    customer_id: str | None = Field(default=None, max_length=255, unique=True)
    idempotency_key: str = Field(max_length=255)
    created_at: datetime = Field(default_factory=_now, sa_column=_ts())
