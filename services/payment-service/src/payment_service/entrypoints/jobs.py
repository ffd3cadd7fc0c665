"""Periodic background jobs: the reconciliation sweeper and the refund worker (``spawnpoint_kit.periodic``).

Both run for the life of the service (``ServiceRuntime.add_job``); a failing run is logged and the next
one starts on schedule. The webhook worker is not one of them: it is woken by NOTIFY
(``entrypoints/webhook_worker.py``).
"""

from __future__ import annotations

from spawnpoint_kit.periodic import BackgroundJob, periodic

from ..metrics import SWEEPS
from ..service_layer.refunds import RefundExecutor
from ..service_layer.sweeper import Sweeper


def sweeper_job(sweeper: Sweeper, *, interval_seconds: float) -> BackgroundJob:
    """``PAYMENT_SWEEP_INTERVAL_SECONDS`` between the starts of two sweeps; a sweep that fails as a whole
    (the database away) is counted as ``payment_sweeps_total{outcome="failed"}``."""

    async def sweep() -> None:
        await sweeper.sweep()

    def count_failure(_: Exception) -> None:
        SWEEPS.labels("failed").inc()

    return periodic(sweep, every=interval_seconds, name="sweeper", on_error=count_failure)


def refund_job(executor: RefundExecutor, *, poll_seconds: float = 1.0) -> BackgroundJob:
    """Runs due refunds every ``poll_seconds``. It polls rather than LISTENs: a refund a second later
    does not matter, and a LISTEN connection per job adds up when many stacks share one PostgreSQL."""

    async def run_due() -> None:
        await executor.run_due()

    return periodic(run_due, every=poll_seconds, name="refunds")
