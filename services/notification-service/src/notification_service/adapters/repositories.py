"""notification-service's repositories: the only code that writes its tables.

Each is bound to the open unit of work's session (``service_layer/unit_of_work.py``).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from spawnpoint_contracts import OrderSnapshot
from spawnpoint_kit.db import execute_sql

from .tables import ContactRow, MessageRow, MessageStatus, PreferenceRow

_DUE = sa.text(
    """
    SELECT m.id FROM messages m
    WHERE m.status IN ('pending', 'sending') AND m.next_attempt_at <= :now
      AND NOT EXISTS (
        SELECT 1 FROM messages e
        WHERE e.order_id = m.order_id AND e.role = m.role AND e.id <> m.id
          AND e.status IN ('pending', 'sending')
          AND (e.occurred_at, e.id) < (m.occurred_at, m.id)
      )
    ORDER BY m.occurred_at, m.id
    LIMIT :limit
    FOR UPDATE OF m SKIP LOCKED
    """
)
"""Due rows, oldest first, and only the first unsent one of each order and recipient: a customer reads
their notices in the order things happened, even when an earlier one waits for a retry."""

_SENT_SINCE = sa.text("SELECT count(*) FROM messages WHERE recipient = :recipient AND sent_at >= :since")
_OLDEST_UNSENT = sa.text("SELECT min(created_at) FROM messages WHERE status IN ('pending', 'sending')")
_UNSENT = sa.text("SELECT count(*) FROM messages WHERE status IN ('pending', 'sending')")


class ContactRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def remember(self, order: OrderSnapshot) -> None:
        """Insert or refresh the order's contact from its snapshot. An address an operator corrected is kept."""
        values = {
            "order_id": order.order_id,
            "user_id": order.user_id,
            "email": order.email,
            "locale": order.locale,
            "time_zone": order.time_zone,
            "customer_name": order.customer_name,
            "server_name": order.server_name,
            "game_name": order.game_name,
            "plan_name": order.plan_name,
            "updated_at": datetime.now(UTC),
        }
        statement = insert(ContactRow).values(values)
        excluded = statement.excluded
        await self._session.exec(
            statement.on_conflict_do_update(
                index_elements=[col(ContactRow.order_id)],
                set_={
                    "email": sa.case(
                        (col(ContactRow.email_corrected_at).is_(None), excluded.email), else_=col(ContactRow.email)
                    ),
                    "locale": excluded.locale,
                    "time_zone": excluded.time_zone,
                    # a snapshot without a name (an older producer's OrderPaid) does not forget the one known
                    "customer_name": sa.func.coalesce(excluded.customer_name, col(ContactRow.customer_name)),
                    "server_name": excluded.server_name,
                    "game_name": excluded.game_name,
                    "plan_name": excluded.plan_name,
                    "updated_at": excluded.updated_at,
                },
            )
        )

    async def get(self, order_id: uuid.UUID) -> ContactRow | None:
        return await self._session.get(ContactRow, order_id)

    async def lock(self, order_id: uuid.UUID) -> ContactRow | None:
        result = await self._session.exec(
            select(ContactRow).where(col(ContactRow.order_id) == order_id).with_for_update()
        )
        return result.first()

    async def save(self, contact: ContactRow) -> None:
        self._session.add(contact)

    async def note_server(self, order_id: uuid.UUID, *, server_id: int, identifier: str | None) -> None:
        contact = await self.lock(order_id)
        if contact is None:
            return
        contact.panel_server_id = server_id
        contact.identifier = identifier or contact.identifier
        contact.updated_at = datetime.now(UTC)
        self._session.add(contact)


class MessageRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, row: MessageRow) -> bool:
        """Record the e-mail; False when it is recorded already (the same event, kind and recipient)."""
        values = {c.name: getattr(row, c.name) for c in MessageRow.__table__.columns}  # type: ignore[attr-defined]
        result = await self._session.exec(
            insert(MessageRow).values(values).on_conflict_do_nothing().returning(col(MessageRow.id))
        )
        return result.first() is not None

    async def claim_due(self, *, now: datetime, lease: timedelta, limit: int) -> list[MessageRow]:
        """Take up to ``limit`` due rows for sending: ``sending`` with a lease until ``now + lease`` (a
        process that dies holding them leaves them to be sent again after it)."""
        ids = [r[0] for r in (await execute_sql(self._session, _DUE, {"now": now, "limit": limit})).all()]
        if not ids:
            return []
        result = await self._session.exec(select(MessageRow).where(col(MessageRow.id).in_(ids)))
        rows = sorted(result.all(), key=lambda r: (r.occurred_at, r.id))
        for row in rows:
            row.status = MessageStatus.SENDING
            row.next_attempt_at = now + lease
            row.updated_at = now
            self._session.add(row)
        return rows

    async def lock(self, message_key: uuid.UUID) -> MessageRow | None:
        result = await self._session.exec(select(MessageRow).where(col(MessageRow.id) == message_key).with_for_update())
        return result.first()

    async def of_event(self, event_id: uuid.UUID) -> list[MessageRow]:
        result = await self._session.exec(
            select(MessageRow).where(col(MessageRow.event_id) == event_id).with_for_update()
        )
        return list(result.all())

    async def of_order(self, order_id: uuid.UUID) -> list[MessageRow]:
        result = await self._session.exec(
            select(MessageRow)
            .where(col(MessageRow.order_id) == order_id)
            .order_by(col(MessageRow.occurred_at), col(MessageRow.id))
        )
        return list(result.all())

    async def sent_to_since(self, recipient: str, since: datetime) -> int:
        result = await execute_sql(self._session, _SENT_SINCE, {"recipient": recipient, "since": since})
        return int(result.scalar_one())

    async def oldest_unsent(self) -> tuple[datetime | None, int]:
        oldest = (await execute_sql(self._session, _OLDEST_UNSENT)).scalar_one()
        count = (await execute_sql(self._session, _UNSENT)).scalar_one()
        return oldest, int(count)

    def save(self, row: MessageRow) -> None:
        row.updated_at = datetime.now(UTC)
        self._session.add(row)


class PreferenceRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def optional_emails(self, user_id: str) -> bool:
        row = await self._session.get(PreferenceRow, user_id)
        return True if row is None else row.optional_emails

    async def set_optional_emails(self, user_id: str, allowed: bool) -> None:
        statement = insert(PreferenceRow).values(user_id=user_id, optional_emails=allowed, updated_at=datetime.now(UTC))
        await self._session.exec(
            statement.on_conflict_do_update(
                index_elements=[col(PreferenceRow.user_id)],
                set_={"optional_emails": allowed, "updated_at": statement.excluded.updated_at},
            )
        )
