"""PostgreSQL LISTEN as a wake-up signal for background loops (the outbox relay, the webhook worker).

NOTIFY is delivered at commit and lost if nobody listens, so it only ever shortens a wait; every loop
that uses it also polls. The connection is re-established after any failure.

A listener that needs the payloads (status-service fans each change out to its open streams) passes
``on_notify``; ``on_connect`` and ``on_disconnect`` tell it when notifications may have been missed, so it
can stop trusting what it cached and catch up from the database.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import asyncpg

from .logs import get_logger

log = get_logger(__name__)


async def sleep_or(stop: asyncio.Event, seconds: float) -> None:
    """Sleep ``seconds`` or until ``stop`` is set, whichever comes first."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


async def listen(
    dsn: str,
    channel: str,
    wake: asyncio.Event,
    stop: asyncio.Event,
    *,
    on_notify: Callable[[str], None] | None = None,
    on_connect: Callable[[], None] | None = None,
    on_disconnect: Callable[[], None] | None = None,
) -> None:
    """Set ``wake`` on every notification on ``channel`` until ``stop`` is set.

    ``on_notify(payload)`` is called for every notification, in commit order; ``on_connect`` once the
    listener is in place (after each reconnect), ``on_disconnect`` when the connection is lost or closed."""

    def notified(_conn: object, _pid: int, _channel: str, payload: str) -> None:
        if on_notify is not None:
            try:
                on_notify(payload)
            except Exception as exc:
                log.exception("notification handler failed", channel=channel, error=repr(exc))
        wake.set()

    while not stop.is_set():
        conn: asyncpg.Connection | None = None
        connected = False
        try:
            conn = await asyncpg.connect(dsn)
            lost = asyncio.Event()
            conn.add_termination_listener(lambda *_, lost=lost: lost.set())
            await conn.add_listener(channel, notified)
            connected = True
            if on_connect is not None:
                on_connect()
            wake.set()  # anything committed while we were not listening
            while not stop.is_set() and not conn.is_closed() and not lost.is_set():
                await _either(stop, lost, 5.0)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.info("listener reconnecting", channel=channel, error=repr(exc))
            await sleep_or(stop, 2.0)
        finally:
            if connected and on_disconnect is not None:
                on_disconnect()
            if conn is not None and not conn.is_closed():
                with contextlib.suppress(Exception):
                    await conn.close()


async def _either(first: asyncio.Event, second: asyncio.Event, seconds: float) -> None:
    """Wait until either event is set or ``seconds`` pass (neither is cleared)."""
    waiters = {asyncio.ensure_future(first.wait()), asyncio.ensure_future(second.wait())}
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


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
