"""Egg definitions, cached: the variables change only when an administrator edits the egg.

One fetch per egg per ``ttl_seconds`` (``EGG_CACHE_SECONDS``), whatever the number of orders: concurrent
misses for the same egg share one request to the panel.
"""

from __future__ import annotations

import asyncio
import time

from prometheus_client import Counter

from ..domain.panel import Egg, Panel

LOOKUPS = Counter("provisioner_egg_cache_total", "Egg lookups by result", ["result"])


class EggCache:
    def __init__(self, panel: Panel, *, ttl_seconds: float = 300.0) -> None:
        self._panel = panel
        self._ttl = ttl_seconds
        self._items: dict[tuple[int | None, int], tuple[float, Egg]] = {}
        self._locks: dict[tuple[int | None, int], asyncio.Lock] = {}

    async def get(self, *, nest_id: int | None, egg_id: int) -> Egg:
        key = (None if self._panel.flavor == "pelican" else nest_id, egg_id)
        egg = self._fresh(key)
        if egg is not None:
            LOOKUPS.labels("hit").inc()
            return egg
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            egg = self._fresh(key)  # filled while we waited for the lock
            if egg is not None:
                LOOKUPS.labels("hit").inc()
                return egg
            LOOKUPS.labels("miss").inc()
            egg = await self._panel.egg(nest_id=key[0], egg_id=egg_id)
            self._items[key] = (time.monotonic(), egg)
            return egg

    def _fresh(self, key: tuple[int | None, int]) -> Egg | None:
        hit = self._items.get(key)
        if hit is not None and time.monotonic() - hit[0] < self._ttl:
            return hit[1]
        return None
