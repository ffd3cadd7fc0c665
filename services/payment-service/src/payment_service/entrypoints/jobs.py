"""Periodic background jobs: the reconciliation sweeper, the refund worker and the pruning of finished
Stripe events (``spawnpoint_kit.periodic``).

Both run for the life of the service (``ServiceRuntime.add_job``); a failing run is logged and the next
one starts on schedule. The webhook worker is not one of them: it is woken by NOTIFY
(``entrypoints/webhook_worker.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from spawnpoint_kit.periodic import BackgroundJob, periodic

from ..metrics import SWEEPS
from ..service_layer.refunds import RefundExecutor
from ..service_layer.rental_deadlines import RentalDeadlines, RentalReconciler
from ..service_layer.sweeper import Sweeper
from ..service_layer.unit_of_work import PaymentUnitOfWork


def sweeper_job(sweeper: Sweeper, *, interval_seconds: float) -> BackgroundJob:
    """``PAYMENT_SWEEP_INTERVAL_SECONDS`` between the starts of two sweeps; a sweep that fails as a whole
    (the database away) is counted as ``payment_sweeps_total{outcome="failed"}``."""

    async def sweep() -> None:
        await sweeper.sweep()

    def count_failure(_: Exception) -> None:
        SWEEPS.labels("failed").inc()

    return periodic(sweep, every=interval_seconds, name="sweeper", on_error=count_failure)


STRIPE_EVENT_RETENTION = timedelta(days=35)
"""Stripe keeps an event retrievable (and an operator can resend it) for 30 days: a finished event older
than that can never come again, so its row only grows the table."""


def stripe_event_pruning_job(unit_of_work: Callable[[], PaymentUnitOfWork], *, batch: int = 5000) -> BackgroundJob:
    """Hourly: delete finished Stripe events older than ``STRIPE_EVENT_RETENTION``, a batch at a time."""

    async def prune() -> bool:
        async with unit_of_work() as uow:
            deleted = await uow.stripe_events.prune(before=datetime.now(UTC) - STRIPE_EVENT_RETENTION, limit=batch)
            await uow.commit()
        return deleted >= batch

    return periodic(prune, every=3600, name="stripe-event-pruning")


def refund_job(executor: RefundExecutor, *, poll_seconds: float = 1.0) -> BackgroundJob:
    """Runs due refunds every ``poll_seconds``. It polls rather than LISTENs: a refund a second later
    does not matter, and a LISTEN connection per job adds up when many stacks share one PostgreSQL."""

    async def run_due() -> None:
        await executor.run_due()

    return periodic(run_due, every=poll_seconds, name="refunds")


def rental_deadline_job(deadlines: RentalDeadlines, *, poll_seconds: float) -> BackgroundJob:
    """Works the rentals whose deadline passed (grace end, period end, term end, deletion warning, deletion)."""

    async def run_due() -> bool:
        return len(await deadlines.run_due()) > 0

    return periodic(run_due, every=poll_seconds, name="rental-deadlines")


def rental_reconcile_job(reconciler: RentalReconciler, *, interval_seconds: float) -> BackgroundJob:
    """Reads every subscription from Stripe again once per interval (a batch a round, a round a tenth of the
    interval, so the whole set is covered within one interval)."""

    async def run() -> None:
        await reconciler.run()

    return periodic(run, every=max(0.5, interval_seconds / 10), name="rental-reconciler")
