"""Applying events to the read model, and rebuilding it.

Each event is stored (deduplicated on its id by the primary key and the inbox) and the order's read model
is recomputed from all of its stored events with the pure ``project`` function, under a per-order
advisory lock so concurrent deliveries for one order serialise. The same function rebuilds everything
from the stored events, so ``rebuild`` gives exactly what incremental projection gave.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from spawnpoint_contracts import Event, parse_event
from spawnpoint_kit.db import execute_sql
from spawnpoint_kit.logs import get_logger
from spawnpoint_kit.messaging import inbox

from ..adapters.tables import OrderEventRow, OrderStatusRow
from ..domain.projection import ReadModel, project

log = get_logger(__name__)
CONSUMER = "status-service.projection"


def _visible(row: OrderStatusRow | None) -> tuple[object, ...] | None:
    if row is None:
        return None
    return (row.user_id, row.status, row.phase, row.message, row.server_id, row.connect_path)


async def _lock_order(session: AsyncSession, order_id: uuid.UUID) -> None:
    await execute_sql(session, sa.text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"), {"k": str(order_id)})


async def _events_of(session: AsyncSession, order_id: uuid.UUID) -> list[Event]:
    rows = (await session.exec(select(OrderEventRow.body).where(OrderEventRow.order_id == order_id))).all()
    return [parse_event(body) for body in rows]


async def _store_model(session: AsyncSession, model: ReadModel) -> bool:
    """Upsert the read model; True when something a customer can see changed."""
    row = await session.get(OrderStatusRow, model.order_id)
    before = _visible(row)
    if row is None:
        row = OrderStatusRow(
            order_id=model.order_id,
            status=model.status.value,
            phase=model.phase.value,
            message=model.message,
            updated_at=model.updated_at,
            last_event_id=model.last_event_id,
            events_applied=model.events_applied,
            version=0,
        )
    row.user_id = model.user_id
    row.status = model.status.value
    row.phase = model.phase.value
    row.message = model.message
    row.server_id = model.server_id
    row.connect_path = model.connect_path
    row.updated_at = model.updated_at
    row.last_event_id = model.last_event_id
    row.events_applied = model.events_applied
    changed = before != _visible(row)
    if changed:
        row.version += 1
    session.add(row)
    return changed


async def apply_event(sessions: async_sessionmaker[AsyncSession], event: Event) -> bool:
    """Store and project one event; True when the customer-visible state changed."""
    async with sessions() as session:
        if not await inbox.claim(
            session, CONSUMER, str(event.event_id), event_type=event.event_type, order_id=event.order_id
        ):
            return False
        await _lock_order(session, event.order_id)
        await session.exec(
            insert(OrderEventRow)
            .values(
                event_id=event.event_id,
                order_id=event.order_id,
                event_type=event.event_type,
                occurred_at=event.occurred_at,
                body=event.model_dump(mode="json"),
                received_at=datetime.now(UTC),
            )
            .on_conflict_do_nothing(index_elements=["event_id"])
        )
        model = project(await _events_of(session, event.order_id))
        changed = False
        if model is not None:
            changed = await _store_model(session, model)
        await session.commit()
    if changed:
        log.info("status changed", phase=model.phase.value if model else None)
    return changed


async def read_status(sessions: async_sessionmaker[AsyncSession], order_id: uuid.UUID) -> OrderStatusRow | None:
    async with sessions() as session:
        return await session.get(OrderStatusRow, order_id)
