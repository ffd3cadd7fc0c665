"""The inbox: a consumer records each message it handled in the same transaction as its effects.

``claim`` inserts ``(consumer, message_key)`` with ``ON CONFLICT DO NOTHING``. If the row already exists
the message was handled before (a redelivery or a duplicate publish): the handler does nothing and the
message is acknowledged. Because the row commits with the effects, a crash before the commit leaves no
row, and the redelivered message is handled again; a duplicate never skips an output that was never
produced.

``message_key`` is usually the event id. A consumer that deliberately receives the same event again (a
broker-delayed retry, an operator's replay) includes the retry generation in the key.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlmodel import Column, Field, SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from ..db import as_sqlalchemy_errors, driver_connection

if TYPE_CHECKING:
    from ..unit_of_work import Claim


class InboxEntry(SQLModel, table=True):
    __tablename__ = "inbox"

    consumer: str = Field(primary_key=True, max_length=200)
    message_key: str = Field(primary_key=True, max_length=300)
    event_type: str | None = Field(default=None, max_length=100)
    order_id: uuid.UUID | None = Field(default=None)
    processed_at: datetime | None = Field(
        default=None,
        sa_column=Column(sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )


async def claim(
    session: AsyncSession,
    consumer: str,
    message_key: str,
    *,
    event_type: str | None = None,
    order_id: uuid.UUID | None = None,
) -> bool:
    """True if this is the first time ``consumer`` sees ``message_key`` (in this transaction's view).

    One statement on the session's driver connection (``db.driver_connection``): every delivery runs it."""
    connection = await driver_connection(session)
    with as_sqlalchemy_errors(_CLAIM):
        inserted = await connection.fetchval(_CLAIM, consumer, message_key, event_type, order_id)
    return inserted is not None


async def claim_many(session: AsyncSession, consumer: str, claims: Sequence[Claim]) -> set[str]:
    """The keys of ``claims`` that ``consumer`` sees for the first time (in this transaction's view), all
    claimed in one statement: a batch of deliveries (group commit) pays one round trip, not one each."""
    if not claims:
        return set()
    connection = await driver_connection(session)
    with as_sqlalchemy_errors(_CLAIM_MANY):
        rows = await connection.fetch(
            _CLAIM_MANY,
            consumer,
            [c.key for c in claims],
            [c.event_type for c in claims],
            [c.order_id for c in claims],
        )
    return {row[0] for row in rows}


_CLAIM_MANY = (
    "INSERT INTO inbox (consumer, message_key, event_type, order_id) "
    "SELECT $1, k, t, o FROM unnest($2::text[], $3::text[], $4::uuid[]) AS c (k, t, o) "
    "ON CONFLICT (consumer, message_key) DO NOTHING RETURNING message_key"
)
_CLAIM = (
    "INSERT INTO inbox (consumer, message_key, event_type, order_id) VALUES ($1, $2, $3, $4) "
    "ON CONFLICT (consumer, message_key) DO NOTHING RETURNING 1"
)
