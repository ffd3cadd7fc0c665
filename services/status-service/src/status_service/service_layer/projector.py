"""Projecting events into the read model, and rebuilding it.

Each event is stored once (the inbox and the primary key deduplicate it; a duplicate only bumps its
delivery count) and the order's read model is recomputed from *all* of its stored events with the pure
``project`` function, under a per-order advisory lock so that concurrent deliveries for one order
serialise. ``project_event`` is the consumer's handler and ``count_delivery`` its duplicate path
(``handlers.py`` registers both); they run in the kit's unit of work, which claims the inbox key and
commits. ``rebuild`` runs exactly the same recomputation over every order, so it gives exactly what
incremental projection gave: it rewrites a row only where the two differ (a projection bug fixed since),
and then bumps its version like any other change.

A change a customer can see (the ``rental`` object included) bumps the row's ``version``, is logged in
``order_status_changes`` and is announced with ``pg_notify`` in the same transaction: PostgreSQL delivers
the notification at commit, to every status-service process, so caches and streams never learn of a
change that was rolled back.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from spawnpoint_contracts import Event
from spawnpoint_kit.logs import get_logger, log_context
from spawnpoint_kit.unit_of_work import count_after_commit

from ..adapters.records import StatusRecord, StoredOrder, VisibleChange
from ..domain.projection import ReadModel, project
from ..metrics import CHANGES, EVENTS, PROJECTION_LAG
from .snapshot import Snapshot
from .unit_of_work import Statuses, StatusUnitOfWork

log = get_logger(__name__)

CONSUMER = "status-service.projection"
"""The inbox's consumer name (the projection queue's name; the inbox rows already stored carry it)."""


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


async def project_event(event: Event, uow: StatusUnitOfWork) -> None:
    """Store one new event and recompute its order's read model (the inbox claimed it already)."""
    await project_events([event], uow)


async def project_events(events: Sequence[Event], uow: StatusUnitOfWork) -> None:
    """Store new events and recompute their orders' read models (the inbox claimed them already): the
    consumer's handler for one delivery, and for a batch of them (the subscription's ``batch_handler``).

    A batch costs what one event costs: one statement locks the orders and stores the events, one loads
    the orders, one saves each order. Each order is recomputed once from all its stored events, which is
    what recomputing it after each of its events in turn ends with in the same transaction: the read model
    is a function of the event set. Only the versions in between, which no one could ever have read (they
    would have committed together), are not written.

    An event whose row is already stored although the inbox had no entry for it (an inbox entry pruned, a
    manual replay) is a duplicate like any other: it only counts as a delivery."""
    stored = await uow.statuses.lock_and_store(events)
    for event in events:
        if event.event_id not in stored:
            await count_delivery(event, uow)
    fresh = [e for e in events if e.event_id in stored]
    if not fresh:
        return
    outcomes = await reproject(uow.statuses, list(dict.fromkeys(e.order_id for e in fresh)), source="projection")
    uow.projected.extend(outcomes)

    async def applied() -> None:
        now = datetime.now(UTC)
        for event in fresh:
            EVENTS.labels(event.event_type, "applied").inc()
            PROJECTION_LAG.observe(max(0.0, (now - event.occurred_at).total_seconds()))
        for outcome in outcomes:
            if outcome.snapshot is not None:
                with log_context(order_id=str(outcome.order_id)):
                    log.info("status changed", status=outcome.snapshot.status, phase=outcome.snapshot.phase)

    uow.after_commit(applied)


async def count_delivery(event: Event, uow: StatusUnitOfWork) -> None:
    """A duplicate delivery of a stored event: count it (the operator's trail shows it), change nothing else."""
    await uow.statuses.count_delivery(event.event_id)
    count_after_commit(uow, EVENTS.labels(event.event_type, "duplicate").inc)


async def reproject(
    statuses: Statuses, order_ids: Sequence[uuid.UUID], *, source: str, write: bool = True
) -> list[Outcome]:
    """Recompute the read model of these orders from their stored events (the caller holds their locks)."""
    stored = await statuses.load(order_ids)
    outcomes = []
    for order_id in order_ids:
        order = stored.get(order_id) or StoredOrder()
        outcomes.append(
            await _store_model(statuses, order_id, project(order.events), order, source=source, write=write)
        )
    return outcomes


def _record(order_id: uuid.UUID, model: ReadModel, version: int) -> StatusRecord:
    return StatusRecord(
        order_id=order_id,
        user_id=model.user_id,
        status=model.status.value,
        phase=model.phase.value,
        message=model.message,
        server_id=model.server_id,
        connect_path=model.connect_path,
        updated_at=model.updated_at,
        rental=model.rental.public() if model.rental is not None else None,
        decided_by=model.decided_by,
        last_event_id=model.last_event_id,
        events_applied=model.events_applied,
        version=version,
    )


async def _store_model(
    statuses: Statuses,
    order_id: uuid.UUID,
    model: ReadModel | None,
    stored: StoredOrder,
    *,
    source: str,
    write: bool,
) -> Outcome:
    row = stored.row
    if model is None:
        # No events, no read model (only a rebuild can meet a row like this).
        if row is not None and write:
            await statuses.remove(order_id)
        return Outcome(order_id, changed=row is not None, drifted=row is not None, removed=row is not None)
    new = _record(order_id, model, stored.version)
    changed = row is None or row.visible() != new.visible()
    drifted = changed or (row is not None and row.bookkeeping() != new.bookkeeping())
    if not write or not drifted:
        return Outcome(order_id, changed=changed, drifted=drifted)
    if not changed:
        await statuses.save(new)
        return Outcome(order_id, changed=False, drifted=True)
    new.version += 1
    changed_at = datetime.now(UTC)
    snapshot = Snapshot.of(new, changed_at=changed_at)
    await statuses.save(new, VisibleChange(changed_at, snapshot.to_notify()))
    CHANGES.labels(source).inc()
    return Outcome(order_id, changed=True, drifted=True, snapshot=snapshot)


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
    unit_of_work: Callable[[], StatusUnitOfWork],
    *,
    batch_size: int = 200,
    check: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> RebuildReport:
    """Recompute every order's read model from its stored events alone.

    Safe while the service runs: each batch is one transaction that takes the same per-order locks as
    the consumer. With ``check`` nothing is written (each batch rolls back) and the report says what
    would change."""
    report = RebuildReport()
    uow = unit_of_work()
    async with uow:
        total = await uow.statuses.count_orders()
    after: uuid.UUID | None = None
    while True:
        async with uow:
            batch = await uow.statuses.orders_after(after, limit=batch_size)
            if not batch:
                break
            await uow.statuses.lock_orders(batch)
            outcomes = await reproject(uow.statuses, batch, source="rebuild", write=not check)
            if not check:
                await uow.commit()
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
