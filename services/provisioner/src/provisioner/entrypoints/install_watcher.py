"""Background job: runs the install watcher's rounds.

Each round checks every due installation concurrently (the panel client's rate gate spaces the calls);
when nothing is due it sleeps ``poll_seconds``. A failing round (database briefly away) is logged and
the job goes on: the runtime restarts a crashed job, and the leases make a half-done round harmless.
"""

from __future__ import annotations

import asyncio

from spawnpoint_kit.logs import get_logger
from spawnpoint_kit.notify import sleep_or
from spawnpoint_kit.runtime import BackgroundJob

from ..service_layer.install_watch import InstallWatcher

log = get_logger(__name__)


def install_watch_job(watcher: InstallWatcher, *, poll_seconds: float) -> BackgroundJob:
    async def run(stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                due = await watcher.due()
                if due:
                    results = await asyncio.gather(
                        *(watcher.check(order_id) for order_id in due), return_exceptions=True
                    )
                    for result in results:
                        if isinstance(result, Exception):
                            log.warning(
                                "install check crashed; its lease will expire and it is checked again",
                                error=repr(result),
                            )
                    continue
            except Exception as exc:
                log.warning("install watch round failed", error=repr(exc))
            await sleep_or(stop, poll_seconds)

    return run
