"""rentals: the next deadline (grace end, period end, term end, deletion warning, deletion), its lease,
and when the customer was warned

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("rentals", sa.Column("due_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("rentals", sa.Column("due_kind", sa.String(32), nullable=True))
    op.add_column("rentals", sa.Column("due_lease_until", sa.DateTime(timezone=True), nullable=True))
    op.add_column("rentals", sa.Column("warned_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_rentals_due", "rentals", ["due_at"], postgresql_where=sa.text("due_at IS NOT NULL"))
    op.create_index(
        "ix_rentals_sync", "rentals", ["synced_at"], postgresql_where=sa.text("subscription_id IS NOT NULL")
    )


def downgrade() -> None:
    op.drop_index("ix_rentals_sync", table_name="rentals")
    op.drop_index("ix_rentals_due", table_name="rentals")
    op.drop_column("rentals", "warned_at")
    op.drop_column("rentals", "due_lease_until")
    op.drop_column("rentals", "due_kind")
    op.drop_column("rentals", "due_at")
