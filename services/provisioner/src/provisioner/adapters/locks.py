"""Per-order locks held across a panel call, so two deliveries of one order handled by this process never
change its server at the same time: a duplicate waits, then finds the work done.

In memory, per process, on purpose: the waiting deliveries hold no database connection (a lock held on
a connection of its own while the holder needs one from the same pool can exhaust the pool and stall
every consumer). Two replicas handling duplicates of one order at the same instant may both call the
panel; every call is idempotent and read back, so the cost is one extra call, never a wrong state
(``docs/decisions.md``).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol


class OrderLocks(Protocol):
    def __call__(self, order_id: uuid.UUID) -> AbstractAsyncContextManager[None]: ...


class InProcessOrderLocks:
    """One ``asyncio.Lock`` per order with work in flight (dropped when nobody holds or waits for it)."""

    def __init__(self) -> None:
        self._locks: dict[uuid.UUID, asyncio.Lock] = {}
        self._users: dict[uuid.UUID, int] = {}

    @asynccontextmanager
    async def __call__(self, order_id: uuid.UUID) -> AsyncIterator[None]:
        lock = self._locks.setdefault(order_id, asyncio.Lock())
        self._users[order_id] = self._users.get(order_id, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._users[order_id] -= 1
            if not self._users[order_id]:
                del self._users[order_id], self._locks[order_id]
