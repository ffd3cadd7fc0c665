"""Periodic background jobs: the reconciliation sweeper and the refund worker.

Both run for the life of the service (``ServiceRuntime.add_job``); a failing run is logged and the next
one starts on schedule. The refund worker polls every second for refunds that are due.
"""

from __future__ import annotations

import asyncio

from spawnpoint_kit.logs import get_logger
from spawnpoint_kit.notify import sleep_or
from spawnpoint_kit.runtime import BackgroundJob

from ..metrics import SWEEPS
from ..service_layer.refunds import RefundExecutor
from ..service_layer.sweeper import Sweeper

log = get_logger(__name__)


def sweeper_job(sweeper: Sweeper, *, interval_seconds: float) -> BackgroundJob:
    """``PAYMENT_SWEEP_INTERVAL_SECONDS`` between the starts of two sweeps."""

    async def run(stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            started = loop.time()
            try:
                await sweeper.sweep()
            except Exception as exc:
                SWEEPS.labels("failed").inc()
                log.exception("sweep failed", error=repr(exc))
            await sleep_or(stop, max(0.0, interval_seconds - (loop.time() - started)))

    return run


def refund_job(executor: RefundExecutor, *, poll_seconds: float = 1.0) -> BackgroundJob:
    """Runs due refunds every ``poll_seconds``. It polls rather than LISTENs: a refund a second later
    does not matter, and a LISTEN connection per job adds up when many stacks share one PostgreSQL."""

    async def run(stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await executor.run_due()
            except Exception as exc:
                log.exception("refund run failed", error=repr(exc))
            await sleep_or(stop, poll_seconds)

    return run
