"""The periodic job behind the rental gauges (``service_layer.rental_metrics``)."""

from __future__ import annotations

from collections.abc import Callable

from spawnpoint_kit.periodic import BackgroundJob, periodic

from ..service_layer.rental_metrics import RentalGauges
from ..service_layer.unit_of_work import PaymentUnitOfWork

RENTAL_METRICS_SECONDS = 30.0


def rental_metrics_job(
    unit_of_work: Callable[[], PaymentUnitOfWork], *, every: float = RENTAL_METRICS_SECONDS
) -> BackgroundJob:
    """Every ``every`` seconds: one grouped read of the rentals, then ``payment_rentals`` and
    ``payment_mrr_minor_units``. A failed read (the database away) leaves the last figures and is logged."""
    gauges = RentalGauges(unit_of_work)

    async def refresh() -> None:
        await gauges.refresh()

    return periodic(refresh, every=every, name="rental-metrics")
