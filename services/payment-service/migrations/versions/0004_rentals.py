"""rentals: the rental of each order, its history, the shop users' Stripe customers, and the subscription
a stored Stripe event is about

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.add_column("stripe_events", sa.Column("subscription_id", sa.String(255), nullable=True))
    op.create_table(
        "rentals",
        sa.Column("order_id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("user_id", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("plan_id", sa.String(100), nullable=False),
        sa.Column("period_id", sa.String(40), nullable=False),
        sa.Column("phase", sa.String(32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("subscription_id", sa.String(255), nullable=True, unique=True),
        sa.Column("customer_id", sa.String(255), nullable=True),
        sa.Column("invoice_id", sa.String(255), nullable=True),
        _ts("paid_through", nullable=True),
        _ts("renews_at", nullable=True),
        _ts("ends_at", nullable=True),
        _ts("next_payment_attempt", nullable=True),
        _ts("grace_until", nullable=True),
        _ts("terminate_at", nullable=True),
        sa.Column("attempt_count", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("hold", sa.String(16), nullable=True),
        sa.Column("desired_state", sa.String(16), nullable=True),
        sa.Column("desired_version", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("limits", postgresql.JSONB(), nullable=False),
        _ts("synced_at", nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
    )
    op.create_index("ix_rentals_user_id", "rentals", ["user_id"])
    op.create_table(
        "rental_transitions",
        sa.Column("id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("order_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("from_phase", sa.String(32), nullable=False),
        sa.Column("to_phase", sa.String(32), nullable=False),
        sa.Column("cause", sa.String(32), nullable=False),
        sa.Column("via", sa.String(32), nullable=False),
        sa.Column("invoice_id", sa.String(255), nullable=True),
        sa.Column("stripe_event_id", sa.String(255), nullable=True),
        _ts("at"),
    )
    op.create_index("ix_rental_transitions_order_id", "rental_transitions", ["order_id"])
    op.create_table(
        "stripe_customers",
        sa.Column("user_id", sa.String(200), primary_key=True),
        sa.Column("customer_id", sa.String(255), nullable=True, unique=True),
        sa.Column("idempotency_key", sa.String(255), nullable=False),
        _ts("created_at"),
    )


def downgrade() -> None:
    op.drop_table("stripe_customers")
    op.drop_index("ix_rental_transitions_order_id", table_name="rental_transitions")
    op.drop_table("rental_transitions")
    op.drop_index("ix_rentals_user_id", table_name="rentals")
    op.drop_table("rentals")
    op.drop_column("stripe_events", "subscription_id")
