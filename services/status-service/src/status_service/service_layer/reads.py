"""Queries the APIs run: indexed primary-key reads of the read model, its change log, and the events.

Plain SQLAlchemy Core on a pooled connection (no ORM session) in autocommit (``spawnpoint_kit.db.reader``:
each query one round trip, no BEGIN or ROLLBACK around it): these run on cache misses and reconnects, and
the cheaper they are the better the service holds up when many arrive at once.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select

from spawnpoint_contracts import Event, parse_event
from spawnpoint_kit.db import reader

from ..adapters.tables import OrderEventRow, OrderStatusChangeRow, OrderStatusRow
from .snapshot import Snapshot

MAX_CHANGES = 1000
"""Most changes one resumption replays (an order has a handful; this only bounds a pathological one)."""

_STATUS_COLUMNS = (
    col(OrderStatusRow.order_id),
    col(OrderStatusRow.user_id),
    col(OrderStatusRow.version),
    col(OrderStatusRow.status),
    col(OrderStatusRow.phase),
    col(OrderStatusRow.message),
    col(OrderStatusRow.server_id),
    col(OrderStatusRow.connect_path),
    col(OrderStatusRow.updated_at),
    col(OrderStatusRow.rental),
)


async def load_snapshot(engine: AsyncEngine, order_id: uuid.UUID) -> Snapshot | None:
    """The current visible state of one order (one primary-key read)."""
    async with reader(engine).connect() as conn:
        row = (await conn.execute(sa.select(*_STATUS_COLUMNS).where(col(OrderStatusRow.order_id) == order_id))).first()
    return Snapshot.of(row) if row is not None else None


async def load_snapshots(engine: AsyncEngine, order_ids: Sequence[uuid.UUID]) -> list[Snapshot]:
    """The current visible state of several orders (one query)."""
    if not order_ids:
        return []
    async with reader(engine).connect() as conn:
        rows = (
            await conn.execute(sa.select(*_STATUS_COLUMNS).where(col(OrderStatusRow.order_id).in_(order_ids)))
        ).all()
    return [Snapshot.of(row) for row in rows]


async def load_changes(engine: AsyncEngine, order_id: uuid.UUID, after: int) -> list[Snapshot]:
    """The order's visible changes with a version above ``after``, oldest first."""
    async with reader(engine).connect() as conn:
        rows = (
            await conn.execute(
                select(OrderStatusChangeRow)
                .where(OrderStatusChangeRow.order_id == order_id, col(OrderStatusChangeRow.version) > after)
                .order_by(col(OrderStatusChangeRow.version))
                .limit(MAX_CHANGES)
            )
        ).all()
    return [Snapshot.of(row) for row in rows]


async def load_change_log(engine: AsyncEngine, order_id: uuid.UUID) -> list[Snapshot]:
    """Every visible change of the order, oldest first (for the operator's trail)."""
    return await load_changes(engine, order_id, 0)


@dataclass(frozen=True)
class OwnedOrder:
    """One of a customer's orders for their list: its current status and what they bought."""

    snapshot: Snapshot
    placed_at: datetime
    game_id: str | None
    game_name: str | None
    plan_id: str | None
    plan_name: str | None
    server_name: str | None


def _ordered(*path: str) -> Any:
    """A text field of the ``OrderCreated`` event's order snapshot (``payload.order.<path>``)."""
    return sa.func.jsonb_extract_path_text(col(OrderEventRow.body), "payload", "order", *path)


async def load_owned(
    engine: AsyncEngine, user_id: str, *, limit: int, before: tuple[datetime, uuid.UUID] | None
) -> list[OwnedOrder]:
    """The user's orders, newest first (placed_at, then order id, both descending), after the cursor ``before``.

    One indexed query (``order_status.user_id``) joined to each order's ``OrderCreated`` event for when it
    was placed and what it is; an order whose ``OrderCreated`` has not arrived yet is placed at its last
    change. Keyset pagination, so a page is as cheap as the first however far the customer scrolls."""
    placed_at = sa.func.coalesce(col(OrderEventRow.occurred_at), col(OrderStatusRow.updated_at)).label("placed_at")
    query = (
        sa.select(
            *_STATUS_COLUMNS,
            placed_at,
            _ordered("game_id").label("game_id"),
            _ordered("game_name").label("game_name"),
            _ordered("plan_id").label("plan_id"),
            _ordered("plan_name").label("plan_name"),
            _ordered("server_name").label("server_name"),
        )
        .select_from(OrderStatusRow)
        .outerjoin(
            OrderEventRow,
            sa.and_(
                col(OrderEventRow.order_id) == col(OrderStatusRow.order_id),
                col(OrderEventRow.event_type) == "OrderCreated",
            ),
        )
        .where(col(OrderStatusRow.user_id) == user_id)
    )
    if before is not None:
        query = query.where(sa.tuple_(placed_at, col(OrderStatusRow.order_id)) < sa.tuple_(before[0], before[1]))
    query = query.order_by(placed_at.desc(), col(OrderStatusRow.order_id).desc()).limit(limit)
    async with reader(engine).connect() as conn:
        rows = (await conn.execute(query)).all()
    return [
        OwnedOrder(
            snapshot=Snapshot.of(row),
            placed_at=row.placed_at,
            game_id=row.game_id,
            game_name=row.game_name,
            plan_id=row.plan_id,
            plan_name=row.plan_name,
            server_name=row.server_name,
        )
        for row in rows
    ]


@dataclass(frozen=True)
class StoredEvent:
    """An event with what status-service knows about its arrival."""

    event: Event
    seq: int
    received_at: datetime
    deliveries: int


async def load_events(engine: AsyncEngine, order_id: uuid.UUID) -> list[StoredEvent]:
    """Every distinct event the order received, in arrival order."""
    async with reader(engine).connect() as conn:
        rows = (
            await conn.execute(
                select(
                    col(OrderEventRow.body),
                    col(OrderEventRow.seq),
                    col(OrderEventRow.received_at),
                    col(OrderEventRow.deliveries),
                )
                .where(OrderEventRow.order_id == order_id)
                .order_by(col(OrderEventRow.seq))
            )
        ).all()
    return [StoredEvent(parse_event(_body(row[0])), row[1], row[2], row[3]) for row in rows]


def _body(value: Any) -> dict[str, Any]:
    body: dict[str, Any] = value
    return body
