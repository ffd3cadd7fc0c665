"""event arrival order and delivery counts, the deciding event, and the log of visible changes

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "order_events",
        sa.Column("seq", sa.BigInteger(), sa.Identity(always=False), nullable=False),
    )
    op.create_unique_constraint("uq_order_events_seq", "order_events", ["seq"])
    op.add_column("order_events", sa.Column("deliveries", sa.Integer(), nullable=False, server_default="1"))
    op.add_column("order_status", sa.Column("decided_by", postgresql.UUID(as_uuid=True), nullable=True))
    op.create_table(
        "order_status_changes",
        sa.Column("order_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.String(200), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("phase", sa.String(32), nullable=False),
        sa.Column("message", sa.String(500), nullable=False),
        sa.Column("server_id", sa.String(64), nullable=True),
        sa.Column("connect_path", sa.String(200), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("order_id", "version"),
    )
    # Orders projected before this revision: their current state is their first logged change.
    op.execute(
        """
        INSERT INTO order_status_changes
            (order_id, version, user_id, status, phase, message, server_id, connect_path, updated_at, changed_at)
        SELECT order_id, version, user_id, status, phase, message, server_id, connect_path, updated_at, now()
        FROM order_status
        """
    )


def downgrade() -> None:
    op.drop_table("order_status_changes")
    op.drop_column("order_status", "decided_by")
    op.drop_column("order_events", "deliveries")
    op.drop_constraint("uq_order_events_seq", "order_events", type_="unique")
    op.drop_column("order_events", "seq")
