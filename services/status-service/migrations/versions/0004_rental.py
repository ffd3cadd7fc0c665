"""the rental as the customer sees it, on the read model and on its change log

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02

Rows projected before this revision get ``rental`` null. Orders that already stored a ``RentalChanged``
(status-service stores every event) get their rental from ``status-service rebuild``, which recomputes it
from the stored events, bumps those orders' versions and notifies the running processes.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("order_status", sa.Column("rental", postgresql.JSONB(), nullable=True))
    op.add_column("order_status_changes", sa.Column("rental", postgresql.JSONB(), nullable=True))


def downgrade() -> None:
    op.drop_column("order_status_changes", "rental")
    op.drop_column("order_status", "rental")
