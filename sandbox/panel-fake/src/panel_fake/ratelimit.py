"""Laravel's ``throttle`` middleware: a fixed window per key owner.

Laravel's ``RateLimiter`` starts a window on the first hit and counts hits until the window
expires, then starts over; a request is refused when the count has already reached the
limit (the refused request is not counted). The bucket is the key owner's uuid, so all keys
of one admin share it, and the application and client APIs have separate buckets.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    headers: dict[str, str]


@dataclass
class _Window:
    started: float
    hits: int


class RateLimiter:
    """Fixed-window counters keyed by ``(api, owner)``."""

    def __init__(self, period: float = 60.0) -> None:
        self.period = period
        self._windows: dict[str, _Window] = {}

    def reset(self) -> None:
        self._windows.clear()

    def hit(self, bucket: str, limit: int, now: float | None = None) -> RateDecision:
        """Count one request; ``limit <= 0`` means unlimited and sends no headers."""
        if limit <= 0:
            return RateDecision(True, {})
        current = time.monotonic() if now is None else now
        window = self._windows.get(bucket)
        if window is None or current - window.started >= self.period:
            window = _Window(started=current, hits=0)
            self._windows[bucket] = window
        if window.hits >= limit:
            retry_after = max(1, math.ceil(window.started + self.period - current))
            return RateDecision(
                False,
                {
                    "X-RateLimit-Limit": str(limit),
                    "X-RateLimit-Remaining": "0",
                    "Retry-After": str(retry_after),
                    "X-RateLimit-Reset": str(int(time.time()) + retry_after),
                },
            )
        window.hits += 1
        return RateDecision(
            True,
            {"X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": str(max(0, limit - window.hits))},
        )
