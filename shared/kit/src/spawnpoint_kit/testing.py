"""Waiting for eventual consistency in tests: poll to a deadline, never sleep a fixed time.

Shared by the services' component tests and the end-to-end tests (``tests/integration``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T | None]], *, timeout: float = 30.0, interval: float = 0.05, what: str = ""
) -> T:
    """Call ``probe`` until it returns something other than None (or False); fail at the deadline with the
    last value it returned."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while True:
        last = await probe()
        if last is not None and last is not False:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or probe}; last value: {last!r}")
        await asyncio.sleep(interval)
