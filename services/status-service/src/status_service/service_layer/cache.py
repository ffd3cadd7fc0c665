"""The in-process status cache that answers polls without touching the database.

Correctness comes from the change feed, not from a time-to-live: every committed change reaches every
process as a NOTIFY carrying the new state, which replaces the cached entry (only ever with a higher
version). Unknown orders are cached too (as "missing") and replaced the same way when they appear.
While the feed is down the cache is switched off and every lookup reads the database; when it comes
back the cache starts empty, because notifications sent in between are lost.

A miss reads one row by primary key. Concurrent reads for one order share that read (also while the
feed is down), and a read that started before the feed reconnected is not cached (it may predate a
change whose notification was lost).
"""

from __future__ import annotations

import asyncio
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from ..metrics import CACHE_BYPASS, CACHE_HIT, CACHE_MISS
from .snapshot import Snapshot

Loader = Callable[[uuid.UUID], Awaitable[Snapshot | None]]


class _Missing:
    """Cached knowledge that an order has no read model (yet)."""


MISSING = _Missing()


class StatusCache:
    """Snapshots by order id, least recently used evicted first; off until the change feed is up."""

    def __init__(self, load: Loader, *, capacity: int) -> None:
        self._load = load
        self._capacity = capacity
        self._entries: OrderedDict[uuid.UUID, Snapshot | _Missing] = OrderedDict()
        self._inflight: dict[uuid.UUID, asyncio.Future[Snapshot | None]] = {}
        self._enabled = False
        self._generation = 0

    @property
    def enabled(self) -> bool:
        return self._enabled

    def __len__(self) -> int:
        return len(self._entries)

    def enable(self) -> None:
        """The change feed is listening: start caching, from empty."""
        self._generation += 1
        self._entries.clear()
        self._enabled = self._capacity > 0

    def disable(self) -> None:
        """The change feed is down: stop trusting and serving cached entries."""
        self._generation += 1
        self._entries.clear()
        self._enabled = False

    async def get(self, order_id: uuid.UUID) -> Snapshot | None:
        """The order's current snapshot, or None when it has no read model."""
        if self._enabled:
            entry = self._entries.get(order_id)
            if entry is not None:
                self._entries.move_to_end(order_id)
                CACHE_HIT.inc()
                return entry if isinstance(entry, Snapshot) else None
            CACHE_MISS.inc()
        else:
            CACHE_BYPASS.inc()
        pending = self._inflight.get(order_id)
        if pending is None:
            pending = asyncio.ensure_future(self._fill(order_id, self._generation))
            self._inflight[order_id] = pending
            pending.add_done_callback(lambda done: self._settled(order_id, done))
        return await asyncio.shield(pending)

    async def _fill(self, order_id: uuid.UUID, generation: int) -> Snapshot | None:
        """One database read, shared by every poll of the order that arrives while it runs; cached only
        if the feed was listening the whole time."""
        loaded = await self._load(order_id)
        if self._enabled and generation == self._generation:
            self._remember(order_id, loaded if loaded is not None else MISSING)
        return loaded

    def _settled(self, order_id: uuid.UUID, done: asyncio.Future[Snapshot | None]) -> None:
        self._inflight.pop(order_id, None)
        if not done.cancelled():
            done.exception()  # retrieved here too: every requester may have gone away

    def publish(self, snapshot: Snapshot) -> None:
        """A committed change (from the feed): replace the entry unless it is already newer."""
        if not self._enabled:
            return
        current = self._entries.get(snapshot.order_id)
        if isinstance(current, Snapshot) and current.version >= snapshot.version:
            return
        self._remember(snapshot.order_id, snapshot)

    def _remember(self, order_id: uuid.UUID, entry: Snapshot | _Missing) -> None:
        current = self._entries.get(order_id)
        if isinstance(current, Snapshot) and isinstance(entry, Snapshot) and current.version > entry.version:
            return
        if isinstance(current, Snapshot) and entry is MISSING:
            return
        self._entries[order_id] = entry
        self._entries.move_to_end(order_id)
        while len(self._entries) > self._capacity:
            self._entries.popitem(last=False)
