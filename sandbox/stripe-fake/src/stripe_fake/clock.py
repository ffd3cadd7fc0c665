"""The fake's clock: real time plus an offset that tests can move forward.

Stripe decides expiry, ``created`` timestamps and the ``t=`` of webhook signatures on its own clock.
Tests need to jump past ``expires_at`` (30 minutes to 24 hours away) without waiting, so every time
check in the fake reads this clock, and ``POST /_fake/clock/advance`` moves it.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class FakeClock:
    """Wall-clock time shifted by a non-negative offset (time never runs backwards)."""

    def __init__(self, source: Callable[[], float] = time.time) -> None:
        self._source = source
        self._offset = 0.0

    def now(self) -> float:
        """Current fake time in Unix seconds."""
        return self._source() + self._offset

    def now_int(self) -> int:
        """Current fake time in whole Unix seconds, as Stripe's timestamps are."""
        return int(self.now())

    @property
    def offset(self) -> float:
        """How far the fake clock is ahead of real time, in seconds."""
        return self._offset

    def advance(self, seconds: float) -> None:
        """Move the clock forward; refuses negative steps so timestamps stay monotonic."""
        if seconds < 0:
            raise ValueError("the fake clock only moves forward")
        self._offset += seconds

    def reset(self) -> None:
        """Back to real time."""
        self._offset = 0.0
