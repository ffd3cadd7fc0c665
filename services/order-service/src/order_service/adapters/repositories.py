"""order-service's repositories: the only code that reads and writes its tables.

Each is bound to the open unit of work's transaction rows (``spawnpoint_kit.rows``, ``uow.rows``): the
statements go to the driver directly, the rows they hand out are the SQLModel classes of ``tables.py``, and
what the use cases change on them is written back at commit, with the outbox rows. Every order runs these
(placed, read by payment-service for its checkout, moved along when paid and provisioned), and through the
ORM each cost several times the CPU of the driver's prepared statement (decision 48). The handlers and use
cases see these methods, never SQL. Their in-memory twins are in ``order_service.testing``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from spawnpoint_kit.rows import Table, TransactionRows, loaded

from ..domain.order import OrderStatus
from .tables import IdempotencyKeyRow, OrderRow

ORDERS = Table(OrderRow, key="id", json_columns=("snapshot",), enums={"status": OrderStatus})
IDEMPOTENCY_KEYS = Table(IdempotencyKeyRow, key="key")
"""Read only (a key never changes once stored), so its rows are not tracked: its key is two columns."""

_GET_ORDER = f"SELECT {ORDERS.select_list} FROM orders WHERE id = $1"  # noqa: S608 - the model's columns
_LOCK_ORDER = _GET_ORDER + " FOR UPDATE"
_CLAIM_KEY = (
    "INSERT INTO order_idempotency_keys (user_id, key, request_hash, order_id, created_at) "
    "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (user_id, key) DO NOTHING RETURNING 1"
)
_GET_KEY = (
    f"SELECT {IDEMPOTENCY_KEYS.select_list} FROM order_idempotency_keys "  # noqa: S608 - the model's columns
    "WHERE user_id = $1 AND key = $2"
)


class OrderRepository:
    def __init__(self, rows: TransactionRows) -> None:
        self._rows = rows

    def add(self, order: OrderRow) -> None:
        """The new order, inserted at commit (or before the next read of an order in this transaction)."""
        self._rows.stage(ORDERS, order)

    async def get(self, order_id: uuid.UUID) -> OrderRow | None:
        found: OrderRow | None = await self._rows.one(ORDERS, _GET_ORDER, order_id)
        return found

    async def lock(self, order_id: uuid.UUID) -> OrderRow | None:
        """The order, locked until the transaction ends (concurrent payment facts serialise)."""
        found: OrderRow | None = await self._rows.lock(ORDERS, _LOCK_ORDER, order_id)
        return found


class IdempotencyKeyRepository:
    def __init__(self, rows: TransactionRows) -> None:
        self._rows = rows

    async def claim(self, *, user_id: str, key: str, request_hash: str, order_id: uuid.UUID) -> bool:
        """Store the key for ``order_id``; False when the user used it before (a concurrent insert waits for
        the other transaction, so two requests with one key never both win)."""
        claimed = await self._rows.fetchrow(_CLAIM_KEY, user_id, key, request_hash, order_id, datetime.now(UTC))
        return claimed is not None

    async def get(self, *, user_id: str, key: str) -> IdempotencyKeyRow:
        """The stored key (read only: a key is never changed once stored)."""
        record = await self._rows.fetchrow(_GET_KEY, user_id, key)
        if record is None:
            raise LookupError(f"no idempotency key {key!r} of user {user_id!r}")
        return loaded(IdempotencyKeyRow, IDEMPOTENCY_KEYS.decoded(record))
