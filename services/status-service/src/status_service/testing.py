"""An in-memory repository and unit of work for status-service's handler tests (no database, no broker).

Ships with the package, like ``order_service.testing``; nothing in the service imports it. Unlike
order-service's fakes these are transactional: a unit of work that does not commit leaves the stored
events, the read model, the change log and the announcements as they were, as PostgreSQL would (the
projector changes rows in place before it saves them, so a fake without this would keep half a
transaction).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from spawnpoint_contracts import Event
from spawnpoint_kit.unit_of_work import FakeUnitOfWork

from .adapters.tables import OrderStatusChangeRow, OrderStatusRow
from .service_layer.snapshot import Snapshot
from .service_layer.unit_of_work import StatusUnitOfWork


@dataclass(frozen=True)
class FakeStoredEvent:
    event: Event
    seq: int
    deliveries: int = 1


def _copy(row: OrderStatusRow) -> OrderStatusRow:
    return OrderStatusRow(**row.model_dump())


class FakeStatuses:
    """``StatusRepository`` in memory. ``announced`` holds the NOTIFY payloads of committed transactions."""

    def __init__(self) -> None:
        self.events: dict[uuid.UUID, FakeStoredEvent] = {}
        self.rows: dict[uuid.UUID, OrderStatusRow] = {}
        self.changes: list[OrderStatusChangeRow] = []
        self.announced: list[str] = []
        self.locked: list[list[uuid.UUID]] = []
        """The order ids each ``lock_orders`` call asked for, in the order the locks are taken."""
        self._pending: list[str] = []
        self._saved: tuple[dict[uuid.UUID, FakeStoredEvent], dict[uuid.UUID, OrderStatusRow], int] | None = None

    # transactions (driven by FakeStatusUnitOfWork) ---------------------------------------------------

    def begin(self) -> None:
        self._saved = (dict(self.events), {k: _copy(v) for k, v in self.rows.items()}, len(self.changes))
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

    async def store_event(self, event: Event) -> bool:
        if event.event_id in self.events:
            return False
        self.events[event.event_id] = FakeStoredEvent(event, seq=len(self.events) + 1)
        return True

    async def count_delivery(self, event_id: uuid.UUID) -> None:
        stored = self.events.get(event_id)
        if stored is not None:
            self.events[event_id] = replace(stored, deliveries=stored.deliveries + 1)

    async def events_of(self, order_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[Event]]:
        wanted = set(order_ids)
        events: dict[uuid.UUID, list[Event]] = defaultdict(list)
        for stored in self.events.values():
            if stored.event.order_id in wanted:
                events[stored.event.order_id].append(stored.event)
        return events

    async def lock_orders(self, order_ids: Iterable[uuid.UUID]) -> None:
        self.locked.append(sorted(set(order_ids), key=str))

    def _order_ids(self) -> list[uuid.UUID]:
        return sorted({s.event.order_id for s in self.events.values()} | set(self.rows))

    async def count_orders(self) -> int:
        return len(self._order_ids())

    async def orders_after(self, after: uuid.UUID | None, *, limit: int) -> list[uuid.UUID]:
        return [o for o in self._order_ids() if after is None or o > after][:limit]

    async def rows_of(self, order_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, OrderStatusRow]:
        return {o: self.rows[o] for o in order_ids if o in self.rows}

    async def last_logged_versions(self, order_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, int]:
        wanted = set(order_ids)
        last: dict[uuid.UUID, int] = {}
        for change in self.changes:
            if change.order_id in wanted:
                last[change.order_id] = max(last.get(change.order_id, 0), change.version)
        return last

    async def log_change(self, change: OrderStatusChangeRow, announcement: str) -> None:
        self.changes.append(change)
        self._pending.append(announcement)

    def save(self, row: OrderStatusRow) -> None:
        self.rows[row.order_id] = row

    async def remove(self, row: OrderStatusRow) -> None:
        self.rows.pop(row.order_id, None)


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
