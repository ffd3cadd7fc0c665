"""The rental gauges: how many rentals are in each phase, and the monthly recurring revenue.

Computed from the database (``RentalRepository.book``: one statement, grouped) by a periodic job
(``entrypoints/rental_metrics.py``), so every process reports the same figures whatever it handled itself:
aggregate them with ``max``, never ``sum``. What happens to rentals over time (renewals, failed payments,
lapses) is counted where it happens: ``payment_rental_changes_total{cause,via}``.

The MRR counts subscription rentals that are paid for or still being collected (``active``, ``past_due``,
``cancelling``: the money of the current period), each at its order's price (``payments.amount``) brought
to a month from the billing interval of the order (``order_snapshot.billing``): a month /count, a year
/12/count, a week *52/12/count, a day *365/12/count.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from spawnpoint_contracts import RentalPhase

from ..adapters.repositories import RentalBookRow
from ..metrics import MRR, RENTALS
from .unit_of_work import PaymentUnitOfWork

MRR_PHASES = frozenset({RentalPhase.ACTIVE.value, RentalPhase.PAST_DUE.value, RentalPhase.CANCELLING.value})
"""The phases whose subscriptions count as recurring revenue."""

KINDS = ("subscription", "fixed_term")
_PER_YEAR = {"day": 365, "week": 52, "month": 12, "year": 1}


def monthly_factor(interval: str | None, interval_count: int = 1) -> float | None:
    """What one payment every ``interval_count`` ``interval`` is worth per month (None when the interval is
    not a subscription's: a fixed term, or a value Stripe does not have)."""
    per_year = _PER_YEAR.get(interval or "")
    if per_year is None or interval_count < 1:
        return None
    return per_year / 12 / interval_count


def monthly_recurring_revenue(book: Iterable[RentalBookRow]) -> dict[str, float]:
    """MRR in minor units by currency (lower case, as Stripe and the payments table spell it)."""
    mrr: dict[str, float] = {}
    for row in book:
        if row.kind != "subscription" or row.phase not in MRR_PHASES or not row.currency:
            continue
        factor = monthly_factor(row.interval, row.interval_count)
        if factor is None:
            continue
        currency = row.currency.lower()
        mrr[currency] = mrr.get(currency, 0.0) + row.amount * factor
    return mrr


def rentals_by_phase(book: Iterable[RentalBookRow]) -> dict[tuple[str, str], int]:
    """Rentals by (phase, kind), every phase and kind present (0 for none)."""
    counts = {(phase.value, kind): 0 for phase in RentalPhase for kind in KINDS}
    for row in book:
        key = (row.phase, row.kind)
        counts[key] = counts.get(key, 0) + row.rentals
    return counts


class RentalGauges:
    """Refreshes ``payment_rentals`` and ``payment_mrr_minor_units`` from the database. A currency whose
    revenue fell to nothing reads 0 (not a vanished series, which an alert could not tell from a scrape gap)."""

    def __init__(self, unit_of_work: Callable[[], PaymentUnitOfWork]) -> None:
        self._unit_of_work = unit_of_work
        self._currencies: set[str] = set()

    async def refresh(self) -> None:
        async with self._unit_of_work() as uow:
            book = await uow.rentals.book()
        for (phase, kind), count in rentals_by_phase(book).items():
            RENTALS.labels(phase, kind).set(count)
        mrr = monthly_recurring_revenue(book)
        self._currencies |= set(mrr)
        for currency in self._currencies:
            MRR.labels(currency).set(mrr.get(currency, 0.0))
