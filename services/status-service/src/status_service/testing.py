"""An in-memory repository and unit of work for status-service's handler tests (no database, no broker).

Ships with the package, like ``order_service.testing``; nothing in the service imports it. Unlike
order-service's fakes these are transactional: a unit of work that does not commit leaves the stored
events, the read model, the change log and the announcements as they were, as PostgreSQL would (a
transaction that fails after its first statements must leave nothing behind, here as there).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from spawnpoint_contracts import Event
from spawnpoint_kit.unit_of_work import FakeUnitOfWork

from .adapters.records import StatusRecord, StoredOrder, VisibleChange
from .service_layer.snapshot import Snapshot
from .service_layer.unit_of_work import StatusUnitOfWork


@dataclass(frozen=True)
class FakeStoredEvent:
    event: Event
    seq: int
    deliveries: int = 1


@dataclass(frozen=True)
class FakeChange:
    """One ``order_status_changes`` row: the visible columns of the row at one version."""

    order_id: uuid.UUID
    version: int
    user_id: str | None
    status: str
    phase: str
    message: str
    server_id: str | None
    connect_path: str | None
    updated_at: datetime
    rental: dict[str, Any] | None
    changed_at: datetime


class FakeStatuses:
    """``StatusRepository`` in memory. ``announced`` holds the NOTIFY payloads of committed transactions."""

    def __init__(self) -> None:
        self.events: dict[uuid.UUID, FakeStoredEvent] = {}
        self.rows: dict[uuid.UUID, StatusRecord] = {}
        self.changes: list[FakeChange] = []
        self.announced: list[str] = []
        self.locked: list[list[uuid.UUID]] = []
        """The order ids each ``lock_orders`` or ``lock_and_store`` call locked, in the order the locks are taken."""
        self._pending: list[str] = []
        self._saved: tuple[dict[uuid.UUID, FakeStoredEvent], dict[uuid.UUID, StatusRecord], int] | None = None

    # transactions (driven by FakeStatusUnitOfWork) ---------------------------------------------------

    def begin(self) -> None:
        self._saved = (dict(self.events), {k: replace(v) for k, v in self.rows.items()}, len(self.changes))
        self._pending = []

    def commit(self) -> None:
        self.announced.extend(self._pending)
        self._pending, self._saved = [], None

    def rollback(self) -> None:
        if self._saved is not None:
            self.events, self.rows, logged = self._saved
            del self.changes[logged:]
        self._pending, self._saved = [], None

    def snapshots(self) -> list[Snapshot]:
        """The committed announcements, decoded as a listening process would."""
        return [Snapshot.from_notify(payload) for payload in self.announced]

    # the repository --------------------------------------------------------------------------------

    async def lock_and_store(self, events: Sequence[Event]) -> set[uuid.UUID]:
        self.locked.append(sorted({e.order_id for e in events}, key=str))
        stored = set()
        for event in events:
            if event.event_id not in self.events:
                self.events[event.event_id] = FakeStoredEvent(event, seq=len(self.events) + 1)
                stored.add(event.event_id)
        return stored

    async def count_delivery(self, event_id: uuid.UUID) -> None:
        stored = self.events.get(event_id)
        if stored is not None:
            self.events[event_id] = replace(stored, deliveries=stored.deliveries + 1)

    async def lock_orders(self, order_ids: Iterable[uuid.UUID]) -> None:
        self.locked.append(sorted(set(order_ids), key=str))

    def _order_ids(self) -> list[uuid.UUID]:
        return sorted({s.event.order_id for s in self.events.values()} | set(self.rows))

    async def count_orders(self) -> int:
        return len(self._order_ids())

    async def orders_after(self, after: uuid.UUID | None, *, limit: int) -> list[uuid.UUID]:
        return [o for o in self._order_ids() if after is None or o > after][:limit]

    async def load(self, order_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, StoredOrder]:
        loaded = {}
        for order_id in order_ids:
            row = self.rows.get(order_id)
            logged = [c.version for c in self.changes if c.order_id == order_id]
            loaded[order_id] = StoredOrder(
                events=[s.event for s in self.events.values() if s.event.order_id == order_id],
                row=replace(row) if row is not None else None,  # a copy, as a database row would be
                version=row.version if row is not None else max(logged, default=0),
            )
        return loaded

    async def save(self, row: StatusRecord, change: VisibleChange | None = None) -> None:
        self.rows[row.order_id] = replace(row)
        if change is not None:
            self.changes.append(
                FakeChange(
                    order_id=row.order_id,
                    version=row.version,
                    user_id=row.user_id,
                    status=row.status,
                    phase=row.phase,
                    message=row.message,
                    server_id=row.server_id,
                    connect_path=row.connect_path,
                    updated_at=row.updated_at,
                    rental=row.rental,
                    changed_at=change.changed_at,
                )
            )
            self._pending.append(change.announcement)

    async def remove(self, order_id: uuid.UUID) -> None:
        self.rows.pop(order_id, None)


class FakeStatusUnitOfWork(FakeUnitOfWork, StatusUnitOfWork):
    """The kit's in-memory unit of work with ``FakeStatuses``; pass one ``statuses`` to several units of
    work to share the tables between them (an inbox pruned, another process)."""

    def __init__(self, statuses: FakeStatuses | None = None) -> None:
        super().__init__()
        self.statuses = self.fake_statuses = statuses or FakeStatuses()

    async def _begin(self) -> None:
        await super()._begin()
        self.fake_statuses.begin()

    async def _commit(self) -> None:
        self.fake_statuses.commit()
        await super()._commit()

    async def _rollback(self) -> None:
        await super()._rollback()
        self.fake_statuses.rollback()
