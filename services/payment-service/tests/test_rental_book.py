"""The rental gauges' one query and the reconcile-now listing on the real database (the SQL the in-memory
twin stands in for in ``test_rental_operator.py``)."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from prometheus_client import REGISTRY

from payment_service.adapters.tables import PaymentRow, RentalRow
from payment_service.domain.payment import PaymentStatus
from payment_service.service_layer.rental_metrics import RentalGauges, monthly_recurring_revenue
from payment_service.service_layer.unit_of_work import PaymentUnitOfWork
from payment_service.testing import Orders
from spawnpoint_contracts import Billing, RentalPhase

pytestmark = pytest.mark.component
UnitOfWorkFactory = Callable[[], PaymentUnitOfWork]

QUARTERLY = Billing(kind="subscription", interval="month", interval_count=3, period_id="quarterly")
YEARLY = Billing(kind="subscription", interval="year", period_id="yearly")


async def _rental(
    unit_of_work: UnitOfWorkFactory, billing: Billing | None, phase: RentalPhase, *, amount: int, currency: str
) -> uuid.UUID:
    snapshot = Orders().new(amount=amount, currency=currency, billing=billing).snapshot
    async with unit_of_work() as uow:
        await uow.payments.add(
            PaymentRow(
                order_id=snapshot.order_id,
                user_id=snapshot.user_id,
                email=snapshot.email,
                amount=amount,
                currency=currency,
                status=PaymentStatus.PAID,
                order_snapshot=snapshot.model_dump(mode="json"),
                correlation_id="c",
            )
        )
        await uow.rentals.add(
            RentalRow(
                order_id=snapshot.order_id,
                user_id=snapshot.user_id,
                kind=billing.kind if billing else "fixed_term",
                plan_id=snapshot.plan_id,
                period_id=billing.period_id if billing else "once-30d",
                phase=phase,
                subscription_id=f"sub_{snapshot.order_id.hex[:12]}" if billing else None,
                limits={},
            )
        )
        await uow.commit()
    return snapshot.order_id


async def test_the_book_groups_rentals_by_phase_and_interval_with_their_amounts(
    unit_of_work: UnitOfWorkFactory,
) -> None:
    quarterly = [await _rental(unit_of_work, QUARTERLY, RentalPhase.ACTIVE, amount=4200, currency="xts") for _ in "ab"]
    yearly = await _rental(unit_of_work, YEARLY, RentalPhase.PAST_DUE, amount=15000, currency="xts")
    lapsed = await _rental(unit_of_work, QUARTERLY, RentalPhase.LAPSED, amount=4200, currency="xts")
    ended = await _rental(unit_of_work, YEARLY, RentalPhase.ENDED, amount=15000, currency="xts")
    fixed = await _rental(unit_of_work, None, RentalPhase.ACTIVE, amount=1500, currency="xts")

    async with unit_of_work() as uow:
        book = [row for row in await uow.rentals.book() if row.currency == "xts"]
        listed = await uow.rentals.subscription_rentals(limit=10_000)
    groups = {(r.phase, r.kind, r.interval, r.interval_count): (r.rentals, r.amount) for r in book}
    assert groups[("active", "subscription", "month", 3)] == (2, 8400)
    assert groups[("past_due", "subscription", "year", 1)] == (1, 15000)
    assert groups[("active", "fixed_term", None, 1)] == (1, 1500)
    assert monthly_recurring_revenue(book) == {"xts": pytest.approx(2800 + 1250)}
    assert {*quarterly, yearly, lapsed} <= set(listed) and ended not in listed and fixed not in listed

    await RentalGauges(unit_of_work).refresh()
    assert REGISTRY.get_sample_value("payment_mrr_minor_units", {"currency": "xts"}) == pytest.approx(4050)
    active = REGISTRY.get_sample_value("payment_rentals", {"phase": "active", "kind": "fixed_term"})
    assert active is not None and active >= 1
