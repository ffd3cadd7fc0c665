"""status-service's repository: the only code that writes its tables (the stored events, the read model
and its change log).

``StatusRepository`` is bound to the open unit of work's session (``service_layer/unit_of_work.py``); the
projector sees these methods, never SQL. The HTTP reads do not go through it: they are plain Core queries
on a pooled connection (``service_layer/reads.py``), cheaper than a session on a cache miss.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from spawnpoint_contracts import Event, parse_event, redact_order
from spawnpoint_kit.db import execute_sql

from .tables import OrderEventRow, OrderStatusChangeRow, OrderStatusRow

CHANNEL = "spawnpoint_status_changes"
"""The NOTIFY channel every status-service process listens on; the payload is the new ``Snapshot``."""

_COUNT_ORDERS = sa.text(
    "SELECT count(*) FROM (SELECT order_id FROM order_events UNION SELECT order_id FROM order_status) AS o"
)
_PAGE_OF_ORDERS = sa.text(
    "SELECT order_id FROM (SELECT order_id FROM order_events UNION SELECT order_id FROM order_status) AS o "
    "WHERE CAST(:after AS uuid) IS NULL OR order_id > CAST(:after AS uuid) ORDER BY order_id LIMIT :limit"
)


def stored_body(event: Event) -> dict[str, Any]:
    """The event as status-service keeps it: an order snapshot's secret settings (a server password) redacted.
    The projection never reads settings, so the read model and a rebuild are the same either way; the trail
    an operator reads shows the setting was chosen, never its value."""
    body: dict[str, Any] = event.model_dump(mode="json")
    payload = body.get("payload")
    if isinstance(payload, dict) and isinstance(payload.get("order"), dict):
        body["payload"] = {**payload, "order": redact_order(payload["order"])}
    return body


class StatusRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    # the stored events ------------------------------------------------------------------------------

    async def store_event(self, event: Event) -> bool:
        """Insert the event; False when it is already stored (an inbox entry pruned, a manual replay)."""
        stored = await self._session.exec(
            insert(OrderEventRow)
            .values(
                event_id=event.event_id,
                order_id=event.order_id,
                event_type=event.event_type,
                occurred_at=event.occurred_at,
                body=stored_body(event),
                received_at=datetime.now(UTC),
                deliveries=1,
            )
            .on_conflict_do_nothing(index_elements=["event_id"])
            .returning(col(OrderEventRow.seq))
        )
        return stored.first() is not None

    async def count_delivery(self, event_id: uuid.UUID) -> None:
        """One more delivery of a stored event (a redelivery or a duplicate publish: the trail shows it)."""
        await execute_sql(
            self._session,
            sa.text("UPDATE order_events SET deliveries = deliveries + 1 WHERE event_id = :id"),
            {"id": event_id},
        )

    async def events_of(self, order_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[Event]]:
        """Every stored event of these orders (in no particular order: the projection does not need one)."""
        rows = await self._session.exec(
            select(OrderEventRow.order_id, OrderEventRow.body).where(col(OrderEventRow.order_id).in_(order_ids))
        )
        events: dict[uuid.UUID, list[Event]] = defaultdict(list)
        for order_id, body in rows.all():
            events[order_id].append(parse_event(body))
        return events

    # the orders -------------------------------------------------------------------------------------

    async def lock_orders(self, order_ids: Iterable[uuid.UUID]) -> None:
        """Per-order advisory locks until the end of the transaction, taken in one fixed order (no deadlock
        between a rebuild's batch and the consumers)."""
        keys = sorted({str(o) for o in order_ids})
        await execute_sql(
            self._session,
            sa.text(
                "SELECT count(pg_advisory_xact_lock(hashtextextended(k, 0))) "
                "FROM (SELECT unnest(CAST(:keys AS text[])) AS k ORDER BY 1) AS ordered"
            ),
            {"keys": keys},
        )

    async def count_orders(self) -> int:
        """Orders with stored events or a read-model row (what a rebuild walks through)."""
        total: int = (await execute_sql(self._session, _COUNT_ORDERS)).scalar_one()
        return total

    async def orders_after(self, after: uuid.UUID | None, *, limit: int) -> list[uuid.UUID]:
        """The next ``limit`` of those orders by id, after ``after`` (a rebuild's next batch)."""
        page = await execute_sql(self._session, _PAGE_OF_ORDERS, {"after": after, "limit": limit})
        return [row[0] for row in page.all()]

    # the read model and its change log -------------------------------------------------------------

    async def rows_of(self, order_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, OrderStatusRow]:
        """The current read-model rows of these orders (orders without one are absent)."""
        rows = await self._session.exec(select(OrderStatusRow).where(col(OrderStatusRow.order_id).in_(order_ids)))
        return {row.order_id: row for row in rows.all()}

    async def last_logged_versions(self, order_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, int]:
        """The highest logged version of each order that has one."""
        if not order_ids:
            return {}
        rows = await execute_sql(
            self._session,
            sa.text(
                "SELECT order_id, max(version) AS last FROM order_status_changes "
                "WHERE order_id = ANY(:ids) GROUP BY order_id"
            ),
            {"ids": list(order_ids)},
        )
        return {row["order_id"]: int(row["last"]) for row in rows.mappings()}

    async def log_change(self, change: OrderStatusChangeRow, announcement: str) -> None:
        """Log a visible change and announce it on ``CHANNEL``: PostgreSQL delivers the notification at
        commit (never for a rollback), to every process that listens."""
        self._session.add(change)
        await execute_sql(
            self._session,
            sa.text("SELECT pg_notify(:channel, :payload)"),
            {"channel": CHANNEL, "payload": announcement},
        )

    def save(self, row: OrderStatusRow) -> None:
        """Insert or update the read-model row (written at commit)."""
        self._session.add(row)

    async def remove(self, row: OrderStatusRow) -> None:
        """Delete a read-model row that no stored event supports any more."""
        await self._session.delete(row)
