"""order-service's unit of work: the kit's, with the orders and their idempotency keys.

The repositories are described here as protocols (what the use cases need); ``adapters/repositories.py``
implements them on PostgreSQL and ``order_service.testing`` in memory.
"""

from __future__ import annotations

import uuid
from typing import Protocol

from sqlmodel.ext.asyncio.session import AsyncSession

from spawnpoint_kit.unit_of_work import SqlUnitOfWork, UnitOfWork

from ..adapters.repositories import IdempotencyKeyRepository, OrderRepository
from ..adapters.tables import IdempotencyKeyRow, OrderRow


class Orders(Protocol):
    def add(self, order: OrderRow) -> None: ...
    async def get(self, order_id: uuid.UUID) -> OrderRow | None: ...
    async def lock(self, order_id: uuid.UUID) -> OrderRow | None: ...


class IdempotencyKeys(Protocol):
    async def claim(self, *, user_id: str, key: str, request_hash: str, order_id: uuid.UUID) -> bool: ...
    async def get(self, *, user_id: str, key: str) -> IdempotencyKeyRow: ...


class OrderUnitOfWork(UnitOfWork):
    """What order-service's handlers and use cases see."""

    orders: Orders
    idempotency_keys: IdempotencyKeys


class SqlOrderUnitOfWork(SqlUnitOfWork, OrderUnitOfWork):
    def _repositories(self, session: AsyncSession) -> None:
        self.orders = OrderRepository(self.rows)
        self.idempotency_keys = IdempotencyKeyRepository(self.rows)
