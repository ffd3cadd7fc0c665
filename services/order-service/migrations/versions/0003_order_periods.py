"""orders record the period they bought: its id and billing (kind, interval, interval_count, term_days)

Orders placed before periods existed were one-time purchases of 30 days: the defaults make every existing
row read as the ``once-30d`` fixed term. ``billing_term_days`` keeps no default afterwards (a subscription
has none).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("orders", sa.Column("period_id", sa.String(40), nullable=False, server_default="once-30d"))
    op.add_column("orders", sa.Column("billing_kind", sa.String(16), nullable=False, server_default="fixed_term"))
    op.add_column("orders", sa.Column("billing_interval", sa.String(8), nullable=True))
    op.add_column("orders", sa.Column("billing_interval_count", sa.Integer(), nullable=False, server_default="1"))
    op.add_column("orders", sa.Column("billing_term_days", sa.Integer(), nullable=True, server_default="30"))
    op.alter_column("orders", "billing_term_days", server_default=None)
    op.create_check_constraint(
        "ck_orders_billing_kind",
        "orders",
        "(billing_kind = 'fixed_term' AND billing_term_days IS NOT NULL AND billing_interval IS NULL)"
        " OR (billing_kind = 'subscription' AND billing_interval IS NOT NULL AND billing_term_days IS NULL)",
    )


def downgrade() -> None:
    op.drop_constraint("ck_orders_billing_kind", "orders", type_="check")
    for column in ("billing_term_days", "billing_interval_count", "billing_interval", "billing_kind", "period_id"):
        op.drop_column("orders", column)
