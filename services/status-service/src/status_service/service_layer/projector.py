"""Applying events to the read model, and rebuilding it.

Each event is stored once (the inbox and the primary key deduplicate it; a duplicate only bumps its
delivery count) and the order's read model is recomputed from *all* of its stored events with the pure
``project`` function, under a per-order advisory lock so that concurrent deliveries for one order
serialise. ``rebuild`` runs exactly the same recomputation over every order, so it gives exactly what
incremental projection gave: it rewrites a row only where the two differ (a projection bug fixed since),
and then bumps its version like any other change.

A change a customer can see bumps the row's ``version``, is logged in ``order_status_changes`` and is
announced with ``pg_notify`` in the same transaction: PostgreSQL delivers the notification at commit,
to every status-service process, so caches and streams never learn of a change that was rolled back.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from spawnpoint_contracts import Event, parse_event
from spawnpoint_kit.db import execute_sql
from spawnpoint_kit.logs import get_logger
from spawnpoint_kit.messaging import inbox

from ..adapters.tables import OrderEventRow, OrderStatusChangeRow, OrderStatusRow
from ..domain.projection import ReadModel, project
from ..metrics import CHANGES, EVENTS, PROJECTION_LAG
from .snapshot import Snapshot

log = get_logger(__name__)

CONSUMER = "status-service.projection"
CHANNEL = "spawnpoint_status_changes"
"""The NOTIFY channel every status-service process listens on; the payload is the new ``Snapshot``."""


@dataclass(frozen=True)
class Outcome:
    """What recomputing one order's read model found (and, unless checking only, did)."""

    order_id: uuid.UUID
    changed: bool
    """Something a customer can see differs: the version was (or would be) bumped."""
    drifted: bool
    """Anything in the row differs, visible or not."""
    removed: bool = False
    snapshot: Snapshot | None = None


@dataclass(frozen=True)
class Applied:
    duplicate: bool
    outcome: Outcome | None = None


async def apply_event(sessions: async_sessionmaker[AsyncSession], event: Event) -> Applied:
    """Store and project one event (idempotent: a second delivery only counts as a delivery)."""
    async with sessions() as session:
        first = await inbox.claim(
            session, CONSUMER, str(event.event_id), event_type=event.event_type, order_id=event.order_id
        )
        if first:
            await lock_orders(session, [event.order_id])
            first = await _store_event(session, event)
        if not first:
            await execute_sql(
                session,
                sa.text("UPDATE order_events SET deliveries = deliveries + 1 WHERE event_id = :id"),
                {"id": event.event_id},
            )
            await session.commit()
            EVENTS.labels(event.event_type, "duplicate").inc()
            return Applied(duplicate=True)
        [outcome] = await reproject(session, [event.order_id], source="projection")
        await session.commit()
    EVENTS.labels(event.event_type, "applied").inc()
    PROJECTION_LAG.observe(max(0.0, (datetime.now(UTC) - event.occurred_at).total_seconds()))
    if outcome.snapshot is not None:
        log.info("status changed", status=outcome.snapshot.status, phase=outcome.snapshot.phase)
    return Applied(duplicate=False, outcome=outcome)


async def _store_event(session: AsyncSession, event: Event) -> bool:
    """Insert the event; False when it is already stored (an inbox entry pruned, a manual replay)."""
    stored = await session.exec(
        insert(OrderEventRow)
        .values(
            event_id=event.event_id,
            order_id=event.order_id,
            event_type=event.event_type,
            occurred_at=event.occurred_at,
            body=event.model_dump(mode="json"),
            received_at=datetime.now(UTC),
            deliveries=1,
        )
        .on_conflict_do_nothing(index_elements=["event_id"])
        .returning(col(OrderEventRow.seq))
    )
    return stored.first() is not None


async def lock_orders(session: AsyncSession, order_ids: Iterable[uuid.UUID]) -> None:
    """Per-order advisory locks until the end of the transaction, taken in one fixed order (no deadlock
    between a rebuild's batch and the consumers)."""
    keys = sorted({str(o) for o in order_ids})
    await execute_sql(
        session,
        sa.text(
            "SELECT count(pg_advisory_xact_lock(hashtextextended(k, 0))) "
            "FROM (SELECT unnest(CAST(:keys AS text[])) AS k ORDER BY 1) AS ordered"
        ),
        {"keys": keys},
    )


async def reproject(
    session: AsyncSession, order_ids: Sequence[uuid.UUID], *, source: str, write: bool = True
) -> list[Outcome]:
    """Recompute the read model of these orders from their stored events (the caller holds their locks)."""
    rows = await session.exec(
        select(OrderEventRow.order_id, OrderEventRow.body).where(col(OrderEventRow.order_id).in_(order_ids))
    )
    events: dict[uuid.UUID, list[Event]] = defaultdict(list)
    for order_id, body in rows.all():
        events[order_id].append(parse_event(body))
    current = {
        row.order_id: row
        for row in (await session.exec(select(OrderStatusRow).where(col(OrderStatusRow.order_id).in_(order_ids)))).all()
    }
    missing = [o for o in order_ids if o not in current]
    logged = await _last_logged_versions(session, missing) if missing else {}
    outcomes = []
    for order_id in order_ids:
        model = project(events.get(order_id, []))
        outcomes.append(
            await _store_model(
                session, order_id, model, current.get(order_id), logged.get(order_id, 0), source=source, write=write
            )
        )
    return outcomes


async def _last_logged_versions(session: AsyncSession, order_ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
    """The highest logged version of orders that have no row: a row rebuilt after being lost continues
    its version sequence, so a stream's ``Last-Event-ID`` never points at a reused version."""
    rows = await execute_sql(
        session,
        sa.text(
            "SELECT order_id, max(version) AS last FROM order_status_changes "
            "WHERE order_id = ANY(:ids) GROUP BY order_id"
        ),
        {"ids": order_ids},
    )
    return {row["order_id"]: int(row["last"]) for row in rows.mappings()}


def _visible(row: OrderStatusRow | ReadModel) -> tuple[object, ...]:
    if isinstance(row, ReadModel):
        return (
            row.user_id,
            row.status.value,
            row.phase.value,
            row.message,
            row.server_id,
            row.connect_path,
            row.updated_at,
        )
    return (row.user_id, row.status, row.phase, row.message, row.server_id, row.connect_path, row.updated_at)


def _bookkeeping(row: OrderStatusRow | ReadModel) -> tuple[object, ...]:
    return (row.decided_by, row.last_event_id, row.events_applied)


async def _store_model(
    session: AsyncSession,
    order_id: uuid.UUID,
    model: ReadModel | None,
    row: OrderStatusRow | None,
    last_logged_version: int,
    *,
    source: str,
    write: bool,
) -> Outcome:
    if model is None:
        # No events, no read model (only a rebuild can meet a row like this).
        if row is not None and write:
            await session.delete(row)
        return Outcome(order_id, changed=row is not None, drifted=row is not None, removed=row is not None)
    changed = row is None or _visible(row) != _visible(model)
    drifted = changed or (row is not None and _bookkeeping(row) != _bookkeeping(model))
    if not write or not drifted:
        return Outcome(order_id, changed=changed, drifted=drifted)
    if row is None:
        row = OrderStatusRow(
            order_id=order_id,
            status=model.status.value,
            phase=model.phase.value,
            message=model.message,
            updated_at=model.updated_at,
            last_event_id=model.last_event_id,
            events_applied=model.events_applied,
            version=last_logged_version,
        )
    row.user_id = model.user_id
    row.status = model.status.value
    row.phase = model.phase.value
    row.message = model.message
    row.server_id = model.server_id
    row.connect_path = model.connect_path
    row.updated_at = model.updated_at
    row.decided_by = model.decided_by
    row.last_event_id = model.last_event_id
    row.events_applied = model.events_applied
    snapshot: Snapshot | None = None
    if changed:
        row.version += 1
        changed_at = datetime.now(UTC)
        snapshot = Snapshot.of(row, changed_at=changed_at)
        session.add(
            OrderStatusChangeRow(
                order_id=order_id,
                version=row.version,
                user_id=row.user_id,
                status=row.status,
                phase=row.phase,
                message=row.message,
                server_id=row.server_id,
                connect_path=row.connect_path,
                updated_at=row.updated_at,
                changed_at=changed_at,
            )
        )
        await execute_sql(
            session,
            sa.text("SELECT pg_notify(:channel, :payload)"),
            {"channel": CHANNEL, "payload": snapshot.to_notify()},
        )
        CHANGES.labels(source).inc()
    session.add(row)
    return Outcome(order_id, changed=changed, drifted=True, snapshot=snapshot)


_COUNT_ORDERS = sa.text(
    "SELECT count(*) FROM (SELECT order_id FROM order_events UNION SELECT order_id FROM order_status) AS o"
)
_PAGE_OF_ORDERS = sa.text(
    "SELECT order_id FROM (SELECT order_id FROM order_events UNION SELECT order_id FROM order_status) AS o "
    "WHERE CAST(:after AS uuid) IS NULL OR order_id > CAST(:after AS uuid) ORDER BY order_id LIMIT :limit"
)


@dataclass
class RebuildReport:
    orders: int = 0
    changed: int = 0
    """Orders whose visible state differed (their version was bumped, or would be with ``check``)."""
    corrected: int = 0
    """Orders whose row differed only in bookkeeping (deciding event, last event, event count)."""
    removed: int = 0

    @property
    def identical(self) -> bool:
        return self.changed == 0 and self.corrected == 0 and self.removed == 0


async def rebuild(
    sessions: async_sessionmaker[AsyncSession],
    *,
    batch_size: int = 200,
    check: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> RebuildReport:
    """Recompute every order's read model from its stored events alone.

    Safe while the service runs: each batch takes the same per-order locks as the consumer. With
    ``check`` nothing is written and the report says what would change."""
    report = RebuildReport()
    async with sessions() as session:
        total = (await execute_sql(session, _COUNT_ORDERS)).scalar_one()
    after: uuid.UUID | None = None
    while True:
        async with sessions() as session:
            page = await execute_sql(session, _PAGE_OF_ORDERS, {"after": after, "limit": batch_size})
            batch = [row[0] for row in page.all()]
            if not batch:
                break
            await lock_orders(session, batch)
            outcomes = await reproject(session, batch, source="rebuild", write=not check)
            if check:
                await session.rollback()
            else:
                await session.commit()
        after = batch[-1]
        for outcome in outcomes:
            report.orders += 1
            if outcome.removed:
                report.removed += 1
            elif outcome.changed:
                report.changed += 1
            elif outcome.drifted:
                report.corrected += 1
        if progress is not None:
            progress(report.orders, max(total, report.orders))
    return report
