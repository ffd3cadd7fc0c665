"""server_states: the rental's desired state of each order's server and what the panel was confirmed to show

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "server_states",
        sa.Column("order_id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("desired_state", sa.String(16), nullable=False),
        sa.Column("desired_version", sa.Integer(), nullable=False),
        sa.Column("desired_reason", sa.String(32), nullable=False),
        sa.Column("desired_limits", postgresql.JSONB(), nullable=False),
        sa.Column("desired_event", postgresql.JSONB(), nullable=False),
        sa.Column("applied_state", sa.String(16), nullable=True),
        sa.Column("applied_version", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("applied_limits", postgresql.JSONB(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("broker_retries", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("replay_count", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("failed_version", sa.Integer(), nullable=True),
        sa.Column("failure_reason", sa.String(32), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("waiting", sa.String(16), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("server_states")
