"""status-service's unit of work: the kit's, with the repository of the stored events and the read model.

The repository is described here as a protocol (what the projector needs); ``adapters/repositories.py``
implements it on PostgreSQL. status-service publishes nothing: its units of work commit an inbox row,
stored events and read-model rows, and the NOTIFY that announces a change goes out with that commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Protocol, Self

from sqlmodel.ext.asyncio.session import AsyncSession

from spawnpoint_contracts import Event
from spawnpoint_kit.unit_of_work import SqlUnitOfWork, UnitOfWork

from ..adapters.records import StatusRecord, StoredOrder, VisibleChange
from ..adapters.repositories import StatusRepository

if TYPE_CHECKING:  # projector.py imports this module; the annotation alone needs Outcome
    from .projector import Outcome


class Statuses(Protocol):
    """What the projector and ``rebuild`` need from the stored events and the read model.

    Projecting events is ``lock_and_store`` then, for the new ones, ``load`` and ``save`` per order: three
    round trips on PostgreSQL for one event, and for a batch of them (group commit) too, but for one ``save``
    per order. Rows are plain records read and written in the transaction (never an ORM identity map),
    so a second event of one order in the same transaction sees the row the first one saved."""

    async def lock_and_store(self, events: Sequence[Event]) -> set[uuid.UUID]:
        """Take the events' order locks for the rest of the transaction (in one fixed order), then store the
        events; the ids of those stored now (the others were stored before: duplicates, whose only change
        may be their delivery count)."""
        ...

    async def count_delivery(self, event_id: uuid.UUID) -> None: ...
    async def lock_orders(self, order_ids: Iterable[uuid.UUID]) -> None: ...
    async def count_orders(self) -> int: ...
    async def orders_after(self, after: uuid.UUID | None, *, limit: int) -> list[uuid.UUID]: ...

    async def load(self, order_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, StoredOrder]:
        """Every one of these orders (locked by the caller): its stored events, its row, its version."""
        ...

    async def save(self, row: StatusRecord, change: VisibleChange | None = None) -> None:
        """Write the row; with ``change``, log the row's visible state at its (new) version and announce it."""
        ...

    async def remove(self, order_id: uuid.UUID) -> None: ...


class StatusUnitOfWork(UnitOfWork):
    """What status-service's projector sees."""

    statuses: Statuses

    def __init__(self) -> None:
        super().__init__()
        self.projected: list[Outcome] = []
        """What ``project_event`` found for each event of the current transaction (none for a duplicate),
        so that a caller outside the handler (``apply_event``) can say what the delivery did."""

    async def __aenter__(self) -> Self:
        self.projected = []
        return await super().__aenter__()


class SqlStatusUnitOfWork(SqlUnitOfWork, StatusUnitOfWork):
    def _repositories(self, session: AsyncSession) -> None:
        self.statuses = StatusRepository(session)
