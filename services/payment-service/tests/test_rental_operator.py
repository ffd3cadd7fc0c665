"""The rental operator API and gauges on the in-memory unit of work: the MRR's normalisation to a month, the
reconciler's dry-run report (what would change, nothing written), and the operator-only endpoints."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import cast

import httpx
import pytest
import stripe
from fastapi import FastAPI
from prometheus_client import REGISTRY

from payment_service.adapters.repositories import RentalBookRow
from payment_service.adapters.stripe_gateway import BillingGateway, Subscription
from payment_service.adapters.tables import PaymentRow
from payment_service.bootstrap import create_app
from payment_service.config import Settings
from payment_service.deps import services_of
from payment_service.domain.payment import PaymentStatus
from payment_service.domain.rental import InvoiceFacts, RentalPolicy, SubscriptionFacts
from payment_service.entrypoints.rental_operator import rental_operator_router
from payment_service.service_layer.rental_deadlines import RentalReconciler
from payment_service.service_layer.rental_metrics import (
    RentalGauges,
    monthly_factor,
    monthly_recurring_revenue,
    rentals_by_phase,
)
from payment_service.service_layer.rental_operations import RentalOperations
from payment_service.service_layer.rentals import sync_subscription
from payment_service.testing import FakePaymentDatabase, Orders
from spawnpoint_contracts import Billing, RentalChanged, RentalPhase
from spawnpoint_kit.auth import TokenVerifier, install_auth, mint_token

pytestmark = pytest.mark.unit

NOW = datetime.now(UTC).replace(microsecond=0)
MONTH = timedelta(days=30)
POLICY = RentalPolicy()
SECRET = "test-secret-for-the-operator-api"


# MRR ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("interval", "count", "factor"),
    [
        ("month", 1, 1.0),
        ("month", 3, 1 / 3),
        ("year", 1, 1 / 12),
        ("year", 2, 1 / 24),
        ("week", 1, 52 / 12),
        ("week", 2, 52 / 12 / 2),
        ("day", 1, 365 / 12),
        ("day", 30, 365 / 12 / 30),
    ],
)
def test_a_price_is_brought_to_a_month_from_its_interval(interval: str, count: int, factor: float) -> None:
    assert monthly_factor(interval, count) == pytest.approx(factor)


def test_a_fixed_term_or_an_unknown_interval_has_no_monthly_value() -> None:
    assert monthly_factor(None) is None
    assert monthly_factor("fortnight") is None
    assert monthly_factor("month", 0) is None


def _row(phase: str, amount: int, interval: str | None = "month", count: int = 1, **kw: object) -> RentalBookRow:
    values: dict[str, object] = {"kind": "subscription" if interval else "fixed_term", "currency": "eur", "rentals": 1}
    values.update(kw)
    return RentalBookRow(
        phase=phase,
        kind=str(values["kind"]),
        currency=cast(str | None, values["currency"]),
        interval=interval,
        interval_count=count,
        rentals=cast(int, values["rentals"]),
        amount=amount,
    )


def test_the_mrr_counts_running_subscriptions_only_each_at_its_monthly_value() -> None:
    book = [
        _row("active", 3000, rentals=2),  # two monthly at 15.00
        _row("past_due", 4200, count=3),  # quarterly 42.00: 14.00 a month
        _row("cancelling", 15000, "year"),  # 150.00 a year: 12.50 a month
        _row("active", 500, "week", currency="usd"),  # 5.00 a week
        _row("lapsed", 1500),  # not being paid
        _row("ended", 1500),
        _row("awaiting_payment", 1500),
        _row("active", 1500, None),  # a fixed term is not recurring
    ]
    mrr = monthly_recurring_revenue(book)
    assert mrr["eur"] == pytest.approx(3000 + 1400 + 1250)
    assert mrr["usd"] == pytest.approx(500 * 52 / 12)
    counts = rentals_by_phase(book)
    assert counts[("active", "subscription")] == 3
    assert counts[("active", "fixed_term")] == 1
    assert counts[("past_due", "fixed_term")] == 0  # every phase and kind is reported


def _payment(db: FakePaymentDatabase, billing: Billing | None, amount: int = 1500, currency: str = "eur") -> PaymentRow:
    snapshot = Orders().new(amount=amount, currency=currency, billing=billing).snapshot
    row = PaymentRow(
        order_id=snapshot.order_id,
        user_id=snapshot.user_id,
        email=snapshot.email,
        amount=amount,
        currency=currency,
        status=PaymentStatus.PENDING_PAYMENT,
        order_snapshot=snapshot.model_dump(mode="json"),
        correlation_id="c-1",
    )
    db.payments.rows[row.order_id] = row
    return row


MONTHLY = Billing(kind="subscription", interval="month", period_id="monthly")
QUARTERLY = Billing(kind="subscription", interval="month", interval_count=3, period_id="quarterly")


async def test_the_gauges_are_read_from_the_rentals_and_a_vanished_currency_reads_zero() -> None:
    db = FakePaymentDatabase()
    monthly, quarterly = _payment(db, MONTHLY), _payment(db, QUARTERLY, amount=4200, currency="gbp")
    for payment in (monthly, quarterly):
        await _sync(db, _subscription(payment, sub_id=f"sub_{payment.order_id.hex[:6]}"))
    gauges = RentalGauges(db.unit_of_work)
    await gauges.refresh()
    assert _sample("payment_mrr_minor_units", currency="eur") == pytest.approx(1500)
    assert _sample("payment_mrr_minor_units", currency="gbp") == pytest.approx(1400)
    assert _sample("payment_rentals", phase="active", kind="subscription") == 2
    db.rentals.rows[quarterly.order_id].phase = RentalPhase.LAPSED
    await gauges.refresh()
    assert _sample("payment_mrr_minor_units", currency="gbp") == 0
    assert _sample("payment_rentals", phase="lapsed", kind="subscription") == 1


def _sample(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


# the reconciler on demand -------------------------------------------------------------------------------


def _subscription(
    payment: PaymentRow,
    *,
    period_end: datetime = NOW + MONTH,
    reason: str = "subscription_create",
    sub_id: str = "sub_1",
) -> Subscription:
    invoice = InvoiceFacts(
        id=f"in_{int(period_end.timestamp())}",
        status="paid",
        billing_reason=reason,
        attempt_count=1,
        next_payment_attempt=None,
        amount_paid=payment.amount,
        amount_due=payment.amount,
        currency=payment.currency,
        created=period_end - MONTH,
    )
    facts = SubscriptionFacts(
        id=sub_id,
        status="active",
        current_period_end=period_end,
        cancel_at=None,
        cancel_at_period_end=False,
        ended_at=None,
        cancellation_reason=None,
        latest_invoice=invoice,
        current_period_start=period_end - MONTH,
    )
    return Subscription(facts=facts, order_ref=str(payment.order_id), customer="cus_1")


async def _sync(db: FakePaymentDatabase, subscription: Subscription) -> str:
    uow = db.unit_of_work()
    async with uow:
        outcome = await sync_subscription(uow, subscription, policy=POLICY, via="webhook", now=NOW)
        await uow.commit()
    return outcome


def _missing() -> Exception:
    return stripe.InvalidRequestError(  # type: ignore[no-untyped-call]  # the SDK's errors are not annotated
        "No such subscription", "id", code="resource_missing", http_status=404
    )


def _away() -> Exception:
    return stripe.APIConnectionError("Stripe is away")  # type: ignore[no-untyped-call]  # not annotated either


class FakeStripe:
    """Stripe as the operator endpoints read it: one subscription per id, its invoices, or a failure."""

    def __init__(self) -> None:
        self.subscriptions: dict[str, Subscription] = {}
        self.invoices: dict[str, list[InvoiceFacts]] = {}
        self.failure: Exception | None = None

    async def retrieve_subscription(self, subscription_id: str) -> Subscription:
        if self.failure is not None:
            raise self.failure
        if subscription_id not in self.subscriptions:
            raise _missing()
        return self.subscriptions[subscription_id]

    async def list_invoices(self, subscription_id: str) -> list[InvoiceFacts]:
        if self.failure is not None:
            raise self.failure
        return self.invoices.get(subscription_id, [])


def _operations(db: FakePaymentDatabase, fake: FakeStripe) -> RentalOperations:
    reconciler = RentalReconciler(db.unit_of_work, cast(BillingGateway, fake), POLICY, interval=timedelta(hours=1))
    return RentalOperations(db.unit_of_work, fake, reconciler, POLICY)


async def _renewal_stripe_did_not_tell(db: FakePaymentDatabase) -> tuple[PaymentRow, FakeStripe]:
    """An active monthly rental whose renewal Stripe made while every webhook of it was lost."""
    payment = _payment(db, MONTHLY)
    first = _subscription(payment)
    assert await _sync(db, first) == "activated"
    fake = FakeStripe()
    renewed = _subscription(payment, period_end=NOW + 2 * MONTH, reason="subscription_cycle")
    fake.subscriptions["sub_1"] = renewed
    fake.invoices["sub_1"] = [renewed.facts.latest_invoice, first.facts.latest_invoice]  # type: ignore[list-item]
    return payment, fake


async def test_a_dry_run_reports_the_renewal_stripe_made_and_writes_nothing() -> None:
    db = FakePaymentDatabase()
    payment, fake = await _renewal_stripe_did_not_tell(db)
    rental = db.rentals.rows[payment.order_id]
    before = rental.model_dump()
    commits, transitions, events = db.commits, len(db.rentals.transitions), len(db.events(RentalChanged))

    report = await _operations(db, fake).reconcile(dry_run=True)

    (result,) = report.results
    assert (result.before, result.after, result.causes, result.outcome) == ("active", "active", ("renewed",), "changed")
    assert result.paid_through_before == NOW + MONTH and result.paid_through_after == NOW + 2 * MONTH
    assert report.dry_run and report.changed == 1 and report.failed == 0 and not report.truncated
    assert rental.model_dump() == before  # nothing written: not even synced_at
    assert (db.commits, len(db.rentals.transitions), len(db.events(RentalChanged))) == (commits, transitions, events)


async def test_without_dry_run_the_reconciler_applies_it_and_reports_the_recorded_causes() -> None:
    db = FakePaymentDatabase()
    payment, fake = await _renewal_stripe_did_not_tell(db)
    operations = _operations(db, fake)

    report = await operations.reconcile(dry_run=False, order_id=payment.order_id)

    (result,) = report.results
    assert (result.before, result.after, result.causes, result.outcome) == ("active", "active", ("renewed",), "changed")
    assert db.rentals.rows[payment.order_id].paid_through == NOW + 2 * MONTH
    assert [t.via for t in await db.rentals.history(payment.order_id)] == ["webhook", "reconciler"]
    again = await operations.reconcile(dry_run=True, order_id=payment.order_id)
    assert [(r.outcome, r.causes) for r in again.results] == [("unchanged", ())]


async def test_a_subscription_stripe_cannot_read_is_reported_per_order_and_the_others_still_run() -> None:
    db = FakePaymentDatabase()
    payment, fake = await _renewal_stripe_did_not_tell(db)
    other = _payment(db, MONTHLY)
    await _sync(db, _subscription(other, sub_id="sub_gone"))  # Stripe no longer has it
    ended = _payment(db, MONTHLY)
    await _sync(db, _subscription(ended, sub_id="sub_ended"))
    db.rentals.rows[ended.order_id].phase = RentalPhase.ENDED  # never read again

    report = await _operations(db, fake).reconcile(dry_run=True)
    outcomes = {r.order_id: r.outcome for r in report.results}
    assert outcomes == {payment.order_id: "changed", other.order_id: "unknown_subscription"}

    fake.failure = _away()
    failed = await _operations(db, fake).reconcile(dry_run=False, limit=1)
    assert failed.truncated and failed.failed == 1
    assert failed.results[0].error is not None and "Stripe is away" in failed.results[0].error


# the HTTP API -------------------------------------------------------------------------------------------


def _token(*, operator: bool) -> dict[str, str]:
    token = mint_token(SECRET, sub="oncall" if operator else "alice", roles=("operator",) if operator else ())
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def api_db() -> FakePaymentDatabase:
    return FakePaymentDatabase()


@pytest.fixture
def stripe_reads() -> FakeStripe:
    return FakeStripe()


@pytest.fixture
async def client(api_db: FakePaymentDatabase, stripe_reads: FakeStripe) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    install_auth(app, TokenVerifier(SECRET))
    reconciler = RentalReconciler(
        api_db.unit_of_work, cast(BillingGateway, stripe_reads), POLICY, interval=timedelta(hours=1)
    )
    app.include_router(rental_operator_router(api_db.unit_of_work, stripe_reads, reconciler, POLICY))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
        yield http


async def test_the_rental_endpoints_refuse_customers_and_anonymous_callers(client: httpx.AsyncClient) -> None:
    order = uuid.uuid4()
    for headers, status in (({}, 401), (_token(operator=False), 403)):
        assert (await client.get(f"/operator/rentals/{order}", headers=headers)).status_code == status
        reconciled = await client.post("/operator/rentals/reconcile", json={"dry_run": True}, headers=headers)
        assert reconciled.status_code == status


async def test_an_unknown_order_is_404(client: httpx.AsyncClient) -> None:
    headers = _token(operator=True)
    order = uuid.uuid4()
    shown = await client.get(f"/operator/rentals/{order}", headers=headers)
    assert shown.status_code == 404 and shown.json()["detail"] == "no rental for this order"
    reconciled = await client.post(
        "/operator/rentals/reconcile", json={"dry_run": True, "order_id": str(order)}, headers=headers
    )
    assert reconciled.status_code == 404
    refused = await client.post("/operator/rentals/reconcile", json={"order_id": str(order)}, headers=headers)
    assert refused.status_code == 422  # dry_run is said, never assumed


async def test_an_operator_sees_the_rental_its_history_and_the_invoices_stripe_has(
    client: httpx.AsyncClient, api_db: FakePaymentDatabase, stripe_reads: FakeStripe
) -> None:
    payment, fake = await _renewal_stripe_did_not_tell(api_db)
    stripe_reads.subscriptions, stripe_reads.invoices = fake.subscriptions, fake.invoices
    headers = _token(operator=True)

    body = (await client.get(f"/operator/rentals/{payment.order_id}", headers=headers)).json()
    assert body["phase"] == "active" and body["kind"] == "subscription" and body["version"] == 1
    assert body["subscription_id"] == "sub_1" and body["customer_id"] == "cus_1"
    assert body["amount"] == 1500 and body["currency"] == "eur" and body["desired_state"] == "running"
    assert datetime.fromisoformat(body["paid_through"]) == NOW + MONTH
    assert body["next_deadline"] is None and body["invoices_error"] is None
    assert [(h["from_phase"], h["to_phase"], h["cause"], h["via"]) for h in body["history"]] == [
        ("awaiting_payment", "active", "activated", "webhook")
    ]
    assert [(i["billing_reason"], i["status"], i["amount_paid"]) for i in body["invoices"]] == [
        ("subscription_cycle", "paid", 1500),
        ("subscription_create", "paid", 1500),
    ]

    report = await client.post("/operator/rentals/reconcile", json={"dry_run": True}, headers=headers)
    assert report.status_code == 200
    assert report.json()["changed"] == 1 and report.json()["results"][0]["causes"] == ["renewed"]

    stripe_reads.failure = _away()
    degraded = (await client.get(f"/operator/rentals/{payment.order_id}", headers=headers)).json()
    assert degraded["invoices"] is None and "Stripe is away" in degraded["invoices_error"]
    assert degraded["phase"] == "active"


def test_the_service_serves_the_rental_operator_api_and_runs_the_gauges() -> None:
    app = create_app(Settings())
    paths = app.openapi()["paths"]
    assert "/operator/rentals/{order_id}" in paths and "/operator/rentals/reconcile" in paths
    assert "rental-metrics" in services_of(app).runtime.job_names
