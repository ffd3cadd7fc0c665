"""Background job: runs the install watcher's rounds."""

from __future__ import annotations

import asyncio

from spawnpoint_kit.notify import sleep_or
from spawnpoint_kit.runtime import BackgroundJob

from ..service_layer.install_watch import InstallWatcher


def install_watch_job(watcher: InstallWatcher, *, poll_seconds: float) -> BackgroundJob:
    async def run(stop: asyncio.Event) -> None:
        while not stop.is_set():
            due = await watcher.due()
            if due:
                await asyncio.gather(*(watcher.check(order_id) for order_id in due))
                continue
            await sleep_or(stop, poll_seconds)

    return run
