"""Background jobs that repeat: one loop for all of them, so each service writes only the step.

``periodic(step, every=...)`` makes a ``BackgroundJob`` for ``ServiceRuntime.add_job``: it runs ``step``,
logs a failure (a database or broker briefly away) and carries on, and waits ``every`` seconds between
the *starts* of two runs, or less when the step says more work is waiting (it returns True), or until
the service stops. A step that raises is never the end of the job: the next run starts on schedule.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from .logs import get_logger
from .notify import sleep_or

log = get_logger(__name__)

Step = Callable[[], Awaitable[bool | None]]
"""One run of the job. Return True to run again at once (more is due), anything else to wait."""
BackgroundJob = Callable[[asyncio.Event], Awaitable[None]]


def periodic(
    step: Step,
    *,
    every: float,
    name: str,
    on_error: Callable[[Exception], None] | None = None,
    on_stop: Callable[[], Awaitable[None]] | None = None,
) -> BackgroundJob:
    """A job that runs ``step`` every ``every`` seconds until the service stops; ``on_error`` sees each
    failure (to count it), ``on_stop`` releases what the steps held (a connection)."""

    async def run(stop: asyncio.Event) -> None:
        try:
            await _loop(stop)
        finally:
            if on_stop is not None:
                await on_stop()

    async def _loop(stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            started = loop.time()
            more = False
            try:
                more = bool(await step())
            except Exception as exc:
                if on_error is not None:
                    on_error(exc)
                log.warning("background job run failed; the next one starts on schedule", job=name, error=repr(exc))
            if more:
                await asyncio.sleep(0)
                continue
            await sleep_or(stop, max(0.0, every - (loop.time() - started)))

    return run
