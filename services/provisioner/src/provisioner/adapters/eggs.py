"""Egg definitions, cached: the variables change only when an administrator edits the egg.

One fetch per egg per ``ttl_seconds`` (``EGG_CACHE_SECONDS``), whatever the number of orders: concurrent
misses for the same egg share one request to the panel. An egg the panel does not know (404) is
remembered for a minute too, so a stream of lookups of unknown eggs costs one panel call per egg and
minute, not one per lookup. At most ``max_entries`` eggs (and their locks) are kept, oldest out first.

``BudgetedEggs`` is the cache as the unauthenticated ``POST /validate-settings`` may use it: a hit is free,
a miss spends a small budget of its own (``SETTINGS_CHECK_MISSES_PER_MINUTE``), so that lookups of eggs
nobody sells never take the panel budget of paid orders (finding 10 of the reliability issue).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict

from aiolimiter import AsyncLimiter
from prometheus_client import Counter

from ..domain.panel import Egg, Panel, PanelError, PanelUnreachable

LOOKUPS = Counter("provisioner_egg_cache_total", "Egg lookups by result", ["result"])

Key = tuple[int | None, int]
NOT_FOUND_SECONDS = 60.0


class EggCache:
    def __init__(self, panel: Panel, *, ttl_seconds: float = 300.0, max_entries: int = 1024) -> None:
        self._panel = panel
        self._ttl = ttl_seconds
        self._max = max_entries
        self._items: OrderedDict[Key, tuple[float, Egg | PanelError]] = OrderedDict()
        self._locks: dict[Key, asyncio.Lock] = {}

    def key(self, nest_id: int | None, egg_id: int) -> Key:
        return (None if self._panel.flavor == "pelican" else nest_id, egg_id)

    def cached(self, *, nest_id: int | None, egg_id: int) -> Egg | None:
        """The egg if it is cached (``PanelError`` if the panel said it does not exist), else None."""
        hit = self._fresh(self.key(nest_id, egg_id))
        if isinstance(hit, PanelError):
            raise hit
        return hit

    async def get(self, *, nest_id: int | None, egg_id: int) -> Egg:
        key = self.key(nest_id, egg_id)
        egg = self._hit(key)
        if egg is not None:
            return egg
        lock = self._locks.setdefault(key, asyncio.Lock())
        try:
            async with lock:
                egg = self._hit(key)  # filled while we waited for the lock
                if egg is not None:
                    return egg
                LOOKUPS.labels("miss").inc()
                try:
                    egg = await self._panel.egg(nest_id=key[0], egg_id=egg_id)
                except PanelError as exc:
                    if exc.status == 404:
                        self._store(key, exc)
                    raise
                self._store(key, egg)
                return egg
        finally:
            if not lock.locked():
                self._locks.pop(key, None)

    def _hit(self, key: Key) -> Egg | None:
        hit = self._fresh(key)
        if hit is None:
            return None
        LOOKUPS.labels("hit").inc()
        if isinstance(hit, PanelError):
            raise hit
        return hit

    def _fresh(self, key: Key) -> Egg | PanelError | None:
        hit = self._items.get(key)
        if hit is None:
            return None
        age = time.monotonic() - hit[0]
        if age < (NOT_FOUND_SECONDS if isinstance(hit[1], PanelError) else self._ttl):
            return hit[1]
        return None

    def _store(self, key: Key, value: Egg | PanelError) -> None:
        self._items[key] = (time.monotonic(), value)
        self._items.move_to_end(key)
        while len(self._items) > self._max:
            self._items.popitem(last=False)


class BudgetedEggs:
    """The egg cache for the settings check: hits are free, misses spend a budget of their own."""

    def __init__(self, eggs: EggCache, *, misses_per_minute: float = 30.0) -> None:
        self._eggs = eggs
        self._budget = AsyncLimiter(misses_per_minute, 60.0)

    async def get(self, *, nest_id: int | None, egg_id: int) -> Egg:
        egg = self._eggs.cached(nest_id=nest_id, egg_id=egg_id)
        if egg is not None:
            return egg
        if not self._budget.has_capacity():
            LOOKUPS.labels("refused").inc()
            raise PanelUnreachable("the settings check's budget of panel lookups is spent for this minute")
        await self._budget.acquire()
        return await self._eggs.get(nest_id=nest_id, egg_id=egg_id)
