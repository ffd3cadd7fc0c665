"""refunds, provisioning facts for the refund policy, sweeper bookkeeping, stripe event outcomes

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.add_column("payments", _ts("provision_failed_at", nullable=True))
    op.add_column("payments", sa.Column("provision_failure_reason", sa.String(64), nullable=True))
    op.add_column("payments", sa.Column("provision_failure_replayable", sa.Boolean(), nullable=True))
    op.add_column("payments", _ts("provision_progress_at", nullable=True))
    op.add_column("payments", _ts("server_installed_at", nullable=True))
    op.add_column("payments", _ts("swept_at", nullable=True))
    op.add_column("stripe_events", sa.Column("outcome", sa.String(32), nullable=True))
    op.create_index("ix_stripe_events_pending_order", "stripe_events", ["order_id"], postgresql_where=sa.text("status = 'pending'"))
    op.create_table(
        "refunds",
        sa.Column("id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("order_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("idempotency_key", sa.String(255), nullable=False, unique=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("session_id", sa.String(255), nullable=True),
        sa.Column("payment_intent", sa.String(255), nullable=True),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        _ts("cause_at", nullable=True),
        _ts("due_at"),
        _ts("lease_until", nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("stripe_refund_id", sa.String(255), nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        _ts("completed_at", nullable=True),
    )
    op.create_index("ix_refunds_order_id", "refunds", ["order_id"])
    op.create_index(
        "ix_refunds_due", "refunds", ["due_at"], postgresql_where=sa.text("status IN ('scheduled', 'executing')")
    )


def downgrade() -> None:
    op.drop_index("ix_refunds_due", table_name="refunds")
    op.drop_index("ix_refunds_order_id", table_name="refunds")
    op.drop_table("refunds")
    op.drop_index("ix_stripe_events_pending_order", table_name="stripe_events")
    op.drop_column("stripe_events", "outcome")
    for column in (
        "swept_at",
        "server_installed_at",
        "provision_progress_at",
        "provision_failure_replayable",
        "provision_failure_reason",
        "provision_failed_at",
    ):
        op.drop_column("payments", column)
