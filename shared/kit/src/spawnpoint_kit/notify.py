"""PostgreSQL LISTEN as a wake-up signal for background loops (the outbox relay, the webhook worker).

NOTIFY is delivered at commit and lost if nobody listens, so it only ever shortens a wait; every loop
that uses it also polls. The connection is re-established after any failure.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import asyncpg

from .logs import get_logger

log = get_logger(__name__)


async def sleep_or(stop: asyncio.Event, seconds: float) -> None:
    """Sleep ``seconds`` or until ``stop`` is set, whichever comes first."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


async def listen(dsn: str, channel: str, wake: asyncio.Event, stop: asyncio.Event) -> None:
    """Set ``wake`` on every notification on ``channel`` until ``stop`` is set."""
    while not stop.is_set():
        conn: asyncpg.Connection | None = None
        try:
            conn = await asyncpg.connect(dsn)
            await conn.add_listener(channel, lambda *_: wake.set())
            wake.set()  # anything committed while we were not listening
            while not stop.is_set() and not conn.is_closed():
                await sleep_or(stop, 5.0)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.info("listener reconnecting", channel=channel, error=repr(exc))
            await sleep_or(stop, 2.0)
        finally:
            if conn is not None and not conn.is_closed():
                with contextlib.suppress(Exception):
                    await conn.close()


async def wait_for_wake(wake: asyncio.Event, stop: asyncio.Event, seconds: float, *others: asyncio.Future[Any]) -> None:
    """Wait until woken, stopped, one of ``others`` completes, or ``seconds`` pass; then clear ``wake``."""
    waiters: set[asyncio.Future[Any]] = {
        asyncio.ensure_future(wake.wait()),
        asyncio.ensure_future(stop.wait()),
    }
    try:
        await asyncio.wait(waiters | set(others), timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        wake.clear()
