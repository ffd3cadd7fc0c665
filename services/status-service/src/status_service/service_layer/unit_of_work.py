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

from ..adapters.repositories import StatusRepository
from ..adapters.tables import OrderStatusChangeRow, OrderStatusRow

if TYPE_CHECKING:  # projector.py imports this module; the annotation alone needs Outcome
    from .projector import Outcome


class Statuses(Protocol):
    async def store_event(self, event: Event) -> bool: ...
    async def count_delivery(self, event_id: uuid.UUID) -> None: ...
    async def events_of(self, order_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[Event]]: ...
    async def lock_orders(self, order_ids: Iterable[uuid.UUID]) -> None: ...
    async def count_orders(self) -> int: ...
    async def orders_after(self, after: uuid.UUID | None, *, limit: int) -> list[uuid.UUID]: ...
    async def rows_of(self, order_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, OrderStatusRow]: ...
    async def last_logged_versions(self, order_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, int]: ...
    async def log_change(self, change: OrderStatusChangeRow, announcement: str) -> None: ...
    def save(self, row: OrderStatusRow) -> None: ...
    async def remove(self, row: OrderStatusRow) -> None: ...


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
