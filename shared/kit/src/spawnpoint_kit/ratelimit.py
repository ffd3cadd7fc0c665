"""A per-caller rate limit for endpoints whose every call costs a call to someone else (Stripe).

``PerKeyLimit(rate, per_seconds)`` keeps one token bucket (aiolimiter's ``AsyncLimiter``) per key, at most
``max_keys`` of them (the least recently used go first). ``allow(key)`` never waits for a token: it takes
one if one is there and says whether it did, so a caller past its budget gets a 429 at once instead of holding a
worker. Limits are per process: a shop behind several replicas divides the budget it wants by their count.
"""

from __future__ import annotations

from collections import OrderedDict

from aiolimiter import AsyncLimiter


class PerKeyLimit:
    def __init__(self, rate: float, per_seconds: float, *, max_keys: int = 100_000) -> None:
        self._rate = rate
        self._per = per_seconds
        self._max = max_keys
        self._buckets: OrderedDict[str, AsyncLimiter] = OrderedDict()

    async def allow(self, key: str) -> bool:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = AsyncLimiter(self._rate, self._per)
            while len(self._buckets) > self._max:
                self._buckets.popitem(last=False)
        self._buckets.move_to_end(key)
        if not bucket.has_capacity():
            return False
        await bucket.acquire()  # at once: there is capacity
        return True
