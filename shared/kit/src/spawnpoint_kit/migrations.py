"""Helpers for each service's Alembic ``env.py`` and for the messaging tables every service has.

The outbox and inbox tables have the same shape in every service's database; their DDL lives here once
and each service's first migration calls ``create_messaging_tables()``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine


def run_env(target_metadata: Any) -> None:
    """Body of a service's ``migrations/env.py``: online migrations over the async engine."""
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("sqlalchemy.url is not set; run migrations through '<service> migrate'")
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=target_metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return

    def do_run(connection: Connection) -> None:
        context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
        with context.begin_transaction():
            context.run_migrations()

    async def run_async() -> None:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as connection:
                await connection.run_sync(do_run)
        finally:
            await engine.dispose()

    asyncio.run(run_async())


def create_messaging_tables() -> None:
    """Create ``outbox`` and ``inbox`` (see ``spawnpoint_kit.messaging.outbox`` / ``.inbox``)."""
    op.create_table(
        "outbox",
        sa.Column("id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("exchange", sa.String(255), nullable=False),
        sa.Column("routing_key", sa.String(255), nullable=False),
        sa.Column("message_type", sa.String(100), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("headers", postgresql.JSONB(), nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("correlation_id", sa.String(200), nullable=True),
        sa.Column("order_id", postgresql.UUID(as_uuid=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("available_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index(
        "ix_outbox_unpublished",
        "outbox",
        ["available_at", "created_at"],
        postgresql_where=sa.text("published_at IS NULL"),
    )
    op.create_index("ix_outbox_order_id", "outbox", ["order_id"])
    op.create_table(
        "inbox",
        sa.Column("consumer", sa.String(200), primary_key=True),
        sa.Column("message_key", sa.String(300), primary_key=True),
        sa.Column("event_type", sa.String(100), nullable=True),
        sa.Column("order_id", postgresql.UUID(as_uuid=True), nullable=True),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )


def add_outbox_parking_and_inbox_age() -> None:
    """The outbox's ``parked_at`` (a row that kept failing on its own, set aside for an operator) and an
    index on the inbox's age for pruning; each service's migration after its first calls this."""
    op.add_column("outbox", sa.Column("parked_at", sa.DateTime(timezone=True), nullable=True))
    op.drop_index("ix_outbox_unpublished", table_name="outbox")
    op.create_index(
        "ix_outbox_unpublished",
        "outbox",
        ["available_at", "created_at"],
        postgresql_where=sa.text("published_at IS NULL AND parked_at IS NULL"),
    )
    op.create_index("ix_outbox_parked", "outbox", ["parked_at"], postgresql_where=sa.text("parked_at IS NOT NULL"))
    op.create_index("ix_inbox_processed_at", "inbox", ["processed_at"])


def drop_outbox_parking_and_inbox_age() -> None:
    op.drop_index("ix_inbox_processed_at", table_name="inbox")
    op.drop_index("ix_outbox_parked", table_name="outbox")
    op.drop_index("ix_outbox_unpublished", table_name="outbox")
    op.create_index(
        "ix_outbox_unpublished",
        "outbox",
        ["available_at", "created_at"],
        postgresql_where=sa.text("published_at IS NULL"),
    )
    op.drop_column("outbox", "parked_at")


def drop_messaging_tables() -> None:
    op.drop_table("inbox")
    op.drop_index("ix_outbox_order_id", table_name="outbox")
    op.drop_index("ix_outbox_unpublished", table_name="outbox")
    op.drop_table("outbox")
