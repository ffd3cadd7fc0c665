"""One gate every panel call of the process goes through: the panel's rate limit is never exceeded.

The panel allows 240 application-API requests per minute per key owner (Pelican 256), counted in a
fixed window, and every key of one admin shares the bucket. Whatever the number of orders in flight and
install watches running, this process spends at most ``per_minute + burst`` requests in any 60 seconds:
an ``aiolimiter`` leaky bucket of ``burst`` requests that refills at ``per_minute`` per minute. The
defaults (200 + 20) keep 20 requests of the panel's 240 for operators and other tools.

When the panel answers 429 anyway (another client shares the budget), ``pause`` holds every call of the
process until its ``Retry-After`` has passed, not only the call that was refused.

N provisioner instances against one panel each need 1/N of the budget (``PANEL_RATE_LIMIT_PER_MINUTE``);
see docs/provisioning.md.
"""

from __future__ import annotations

import asyncio
import time

from aiolimiter import AsyncLimiter
from prometheus_client import Counter, Histogram

WAITED = Histogram(
    "provisioner_panel_rate_limit_wait_seconds",
    "Time a panel call waited for the client-side rate limit (or a Retry-After pause)",
    buckets=(0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
)
THROTTLED = Counter("provisioner_panel_throttled_total", "429 answers from the panel")


class RateGate:
    def __init__(self, *, per_minute: float, burst: int = 20, period_seconds: float = 60.0) -> None:
        if per_minute <= 0 or burst < 1:
            raise ValueError("per_minute must be positive and burst at least 1")
        self.per_period = per_minute
        self.burst = burst
        self.period_seconds = period_seconds
        # A bucket of ``burst`` that drains at per_minute/period: at most burst + per_minute per period.
        self._limiter = AsyncLimiter(burst, period_seconds * burst / per_minute)
        self._paused_until = 0.0

    def pause(self, seconds: float) -> None:
        """Hold every call for ``seconds`` (the panel's ``Retry-After``)."""
        THROTTLED.inc()
        self._paused_until = max(self._paused_until, time.monotonic() + max(0.0, seconds))

    @property
    def paused_for(self) -> float:
        return max(0.0, self._paused_until - time.monotonic())

    async def wait(self) -> None:
        """Return when this process may send one more request to the panel."""
        started = time.monotonic()
        await self._sit_out_pause()
        await self._limiter.acquire()
        await self._sit_out_pause()  # a 429 may have arrived while we waited in the bucket
        WAITED.observe(time.monotonic() - started)

    async def _sit_out_pause(self) -> None:
        remaining = self.paused_for
        if remaining > 0:
            await asyncio.sleep(remaining)
