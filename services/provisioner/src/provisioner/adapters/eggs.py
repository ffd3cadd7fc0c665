"""Egg definitions, cached: the variables change only when an administrator edits the egg."""

from __future__ import annotations

import time

from ..domain.panel import Egg
from .panel import PanelClient


class EggCache:
    def __init__(self, panel: PanelClient, *, ttl_seconds: float = 300.0) -> None:
        self._panel = panel
        self._ttl = ttl_seconds
        self._items: dict[tuple[int | None, int], tuple[float, Egg]] = {}

    async def get(self, *, nest_id: int | None, egg_id: int) -> Egg:
        key = (nest_id, egg_id)
        hit = self._items.get(key)
        if hit is not None and time.monotonic() - hit[0] < self._ttl:
            return hit[1]
        egg = await self._panel.egg(nest_id=nest_id, egg_id=egg_id)
        self._items[key] = (time.monotonic(), egg)
        return egg
