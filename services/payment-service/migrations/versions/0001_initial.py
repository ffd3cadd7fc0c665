"""payments, checkout sessions, stripe events, outbox and inbox

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from spawnpoint_kit.migrations import create_messaging_tables, drop_messaging_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "payments",
        sa.Column("order_id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("user_id", sa.String(200), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("order_snapshot", postgresql.JSONB(), nullable=False),
        sa.Column("correlation_id", sa.String(200), nullable=False),
        sa.Column("paid_session_id", sa.String(255), nullable=True),
        sa.Column("payment_intent", sa.String(255), nullable=True),
        sa.Column("fulfilled_via", sa.String(32), nullable=True),
        _ts("paid_at", nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
    )
    op.create_index("ix_payments_user_id", "payments", ["user_id"])
    op.create_index("ix_payments_status_created", "payments", ["status", "created_at"])
    op.create_table(
        "checkout_sessions",
        sa.Column("id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("order_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(255), nullable=False),
        sa.Column("params", postgresql.JSONB(), nullable=False),
        sa.Column("stripe_session_id", sa.String(255), nullable=True, unique=True),
        sa.Column("client_secret", sa.String(500), nullable=True),
        sa.Column("status", sa.String(32), nullable=False),
        _ts("expires_at"),
        _ts("created_at"),
        sa.UniqueConstraint("order_id", "attempt", name="uq_checkout_sessions_order_attempt"),
    )
    op.create_index("ix_checkout_sessions_order_id", "checkout_sessions", ["order_id"])
    op.create_table(
        "stripe_events",
        sa.Column("id", sa.String(255), primary_key=True),
        sa.Column("type", sa.String(100), nullable=False),
        sa.Column("payload", postgresql.JSONB(), nullable=False),
        sa.Column("session_id", sa.String(255), nullable=True),
        sa.Column("order_id", postgresql.UUID(as_uuid=True), nullable=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text(), nullable=True),
        _ts("received_at"),
        _ts("next_attempt_at"),
        _ts("processed_at", nullable=True),
    )
    op.create_index("ix_stripe_events_order_id", "stripe_events", ["order_id"])
    op.create_index(
        "ix_stripe_events_pending",
        "stripe_events",
        ["next_attempt_at"],
        postgresql_where=sa.text("status = 'pending'"),
    )
    create_messaging_tables()


def downgrade() -> None:
    drop_messaging_tables()
    op.drop_table("stripe_events")
    op.drop_table("checkout_sessions")
    op.drop_table("payments")
