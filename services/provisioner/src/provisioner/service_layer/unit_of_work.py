"""The provisioner's unit of work: the kit's, with the orders' provisioning rows and server states.

The repositories are described here as protocols (what the handlers and the install watcher need);
``adapters/repositories.py`` implements them on PostgreSQL and ``provisioner.testing`` in memory. The SQL
ones hand out row objects that the handlers change by assignment; the changed columns are written back
just before the commit, in the same transaction as the inbox entry and the outbox rows
(``spawnpoint_kit.rows``).
"""

from __future__ import annotations

import uuid
from typing import Protocol

from sqlmodel.ext.asyncio.session import AsyncSession

from spawnpoint_contracts import OrderPaid
from spawnpoint_kit.unit_of_work import SqlUnitOfWork, UnitOfWork

from ..adapters.repositories import ProvisioningRepository, ServerStateRepository
from ..adapters.tables import ProvisioningRow, ServerStateRow


class Provisionings(Protocol):
    async def lock_or_create(self, event: OrderPaid) -> ProvisioningRow:
        """The order's row (inserted on its first OrderPaid), locked until the transaction ends."""
        ...

    async def get(self, order_id: uuid.UUID) -> ProvisioningRow | None: ...

    async def lock(self, order_id: uuid.UUID) -> ProvisioningRow | None: ...

    async def lease_due(self, *, limit: int, lease_seconds: float) -> list[ProvisioningRow]:
        """Up to ``limit`` installs whose check is due, each leased (hidden from other rounds) for a while,
        as they are once leased."""
        ...

    async def count_installing(self) -> int: ...

    async def lease_to_suspend(self, *, limit: int, lease_seconds: float) -> list[uuid.UUID]:
        """Refunded orders whose server is not confirmed suspended yet, each leased for a while."""
        ...


class ServerStates(Protocol):
    async def lock_or_create(self, row: ServerStateRow) -> ServerStateRow: ...

    async def lock(self, order_id: uuid.UUID) -> ServerStateRow | None: ...

    async def get(self, order_id: uuid.UUID) -> ServerStateRow | None: ...


class ProvisionerUnitOfWork(UnitOfWork):
    """What the provisioner's handlers and install watcher see."""

    provisionings: Provisionings
    server_states: ServerStates


class SqlProvisionerUnitOfWork(SqlUnitOfWork, ProvisionerUnitOfWork):
    def _repositories(self, session: AsyncSession) -> None:
        self.provisionings = ProvisioningRepository(self.rows)
        self.server_states = ServerStateRepository(self.rows)
