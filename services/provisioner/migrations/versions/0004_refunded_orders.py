"""provisionings: when the order was refunded, and when its server was suspended for it

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("provisionings", sa.Column("refunded_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("provisionings", sa.Column("suspended_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_provisionings_to_suspend",
        "provisionings",
        ["next_check_at"],
        postgresql_where=sa.text("refunded_at IS NOT NULL AND server_id IS NOT NULL AND suspended_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_provisionings_to_suspend", table_name="provisionings")
    op.drop_column("provisionings", "suspended_at")
    op.drop_column("provisionings", "refunded_at")
