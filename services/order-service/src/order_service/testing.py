"""In-memory repositories and unit of work for order-service's handler tests (no database, no broker).

Ships with the package, like ``payment_service.testing``; nothing in the service imports it.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from spawnpoint_kit.unit_of_work import FakeUnitOfWork

from .adapters.tables import IdempotencyKeyRow, OrderRow
from .service_layer.unit_of_work import OrderUnitOfWork


class FakeOrders:
    def __init__(self) -> None:
        self.rows: dict[uuid.UUID, OrderRow] = {}

    def add(self, order: OrderRow) -> None:
        self.rows[order.id] = order

    async def get(self, order_id: uuid.UUID) -> OrderRow | None:
        return self.rows.get(order_id)

    async def lock(self, order_id: uuid.UUID) -> OrderRow | None:
        return self.rows.get(order_id)


class FakeIdempotencyKeys:
    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], IdempotencyKeyRow] = {}

    async def claim(self, *, user_id: str, key: str, request_hash: str, order_id: uuid.UUID) -> bool:
        if (user_id, key) in self.rows:
            return False
        self.rows[(user_id, key)] = IdempotencyKeyRow(
            user_id=user_id, key=key, request_hash=request_hash, order_id=order_id, created_at=datetime.now(UTC)
        )
        return True

    async def get(self, *, user_id: str, key: str) -> IdempotencyKeyRow:
        return self.rows[(user_id, key)]


class FakeOrderUnitOfWork(FakeUnitOfWork, OrderUnitOfWork):
    """Rows live as long as the fake; a rollback does not undo them (tests assert what was committed)."""

    def __init__(self) -> None:
        super().__init__()
        self.orders = self.fake_orders = FakeOrders()
        self.idempotency_keys = self.fake_keys = FakeIdempotencyKeys()
