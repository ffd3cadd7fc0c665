"""provisionings, outbox and inbox

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
        "provisionings",
        sa.Column("order_id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("correlation_id", sa.String(200), nullable=False),
        sa.Column("paid_event_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("order_snapshot", postgresql.JSONB(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("replay_count", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("server_id", sa.Integer(), nullable=True),
        sa.Column("server_uuid", sa.String(64), nullable=True),
        sa.Column("identifier", sa.String(64), nullable=True),
        sa.Column("panel_user_id", sa.Integer(), nullable=True),
        sa.Column("failure_reason", sa.String(64), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        _ts("install_started_at", nullable=True),
        _ts("install_deadline", nullable=True),
        _ts("next_check_at", nullable=True),
        sa.Column("install_checks", sa.Integer(), nullable=False, server_default="0"),
        _ts("created_at"),
        _ts("updated_at"),
    )
    op.create_index(
        "ix_provisionings_installing",
        "provisionings",
        ["next_check_at"],
        postgresql_where=sa.text("status = 'installing'"),
    )
    create_messaging_tables()


def downgrade() -> None:
    drop_messaging_tables()
    op.drop_index("ix_provisionings_installing", table_name="provisionings")
    op.drop_table("provisionings")
