"""contacts, messages (one row per e-mail), preferences, outbox and inbox

Revision ID: 0001
Revises:
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from spawnpoint_kit.migrations import (
    add_outbox_parking_and_inbox_age,
    create_messaging_tables,
    drop_messaging_tables,
    drop_outbox_parking_and_inbox_age,
)

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _at(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "contacts",
        sa.Column("order_id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("user_id", sa.String(200), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        _at("email_corrected_at", nullable=True),
        sa.Column("locale", sa.String(16), nullable=False, server_default="en"),
        sa.Column("time_zone", sa.String(64), nullable=False, server_default="UTC"),
        sa.Column("server_name", sa.String(200), nullable=False),
        sa.Column("game_name", sa.String(200), nullable=False),
        sa.Column("plan_name", sa.String(200), nullable=False),
        sa.Column("panel_server_id", sa.Integer(), nullable=True),
        sa.Column("identifier", sa.String(64), nullable=True),
        _at("updated_at"),
    )
    op.create_index("ix_contacts_user_id", "contacts", ["user_id"])
    op.create_table(
        "messages",
        sa.Column("id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("event_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("order_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("optional", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("recipient", sa.String(320), nullable=True),
        sa.Column("message_id", sa.String(300), nullable=True),
        sa.Column("subject", sa.String(500), nullable=True),
        sa.Column("locale", sa.String(16), nullable=True),
        sa.Column("facts", postgresql.JSONB(), nullable=False),
        sa.Column("event_body", sa.LargeBinary(), nullable=False),
        _at("occurred_at"),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        _at("next_attempt_at"),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("failure_class", sa.String(16), nullable=True),
        sa.Column("replays", sa.Integer(), nullable=False, server_default="0"),
        _at("created_at"),
        _at("sent_at", nullable=True),
        _at("updated_at"),
        sa.UniqueConstraint("event_id", "kind", "role", name="uq_messages_event_kind_role"),
    )
    op.create_index("ix_messages_due", "messages", ["status", "next_attempt_at"])
    op.create_index("ix_messages_recipient_sent", "messages", ["recipient", "sent_at"])
    op.create_index("ix_messages_order_id", "messages", ["order_id"])
    op.create_table(
        "preferences",
        sa.Column("user_id", sa.String(200), primary_key=True),
        sa.Column("optional_emails", sa.Boolean(), nullable=False),
        _at("updated_at"),
    )
    create_messaging_tables()
    add_outbox_parking_and_inbox_age()


def downgrade() -> None:
    drop_outbox_parking_and_inbox_age()
    drop_messaging_tables()
    op.drop_table("preferences")
    op.drop_table("messages")
    op.drop_table("contacts")
