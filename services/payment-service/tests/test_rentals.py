"""The rental service layer on the in-memory unit of work: what a subscription read from Stripe makes
payment-service record and publish, once, whatever order the reads come in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from payment_service.adapters.stripe_gateway import CheckoutSession, Subscription
from payment_service.adapters.tables import PaymentRow
from payment_service.domain.checkout import session_params
from payment_service.domain.payment import PaymentStatus
from payment_service.domain.rental import InvoiceFacts, RentalPolicy, SubscriptionFacts
from payment_service.domain.stripe_events import RetryLater
from payment_service.service_layer.fulfilment import Fulfilment
from payment_service.service_layer.rentals import sync_subscription
from payment_service.testing import FakePaymentDatabase, Orders
from spawnpoint_contracts import (
    Billing,
    DesiredServerState,
    DesiredServerStateChanged,
    OrderPaid,
    RentalCause,
    RentalChanged,
    RentalPhase,
)

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
MONTH = timedelta(days=30)
MONTHLY = Billing(kind="subscription", interval="month", period_id="monthly")
POLICY = RentalPolicy()


def _payment(db: FakePaymentDatabase, billing: Billing | None = MONTHLY) -> PaymentRow:
    snapshot = Orders().new(amount=1500, billing=billing).snapshot
    row = PaymentRow(
        order_id=snapshot.order_id,
        user_id=snapshot.user_id,
        email=snapshot.email,
        amount=1500,
        currency="eur",
        status=PaymentStatus.PENDING_PAYMENT,
        order_snapshot=snapshot.model_dump(mode="json"),
        correlation_id="c-1",
    )
    db.payments.rows[row.order_id] = row
    return row


def _subscription(
    payment: PaymentRow,
    status: str = "active",
    *,
    period_end: datetime = NOW + MONTH,
    invoice_status: str = "paid",
    reason: str = "subscription_create",
    attempts: int = 1,
    next_attempt: datetime | None = None,
) -> Subscription:
    invoice = InvoiceFacts(
        id=f"in_{int(period_end.timestamp())}",
        status=invoice_status,
        billing_reason=reason,
        attempt_count=attempts,
        next_payment_attempt=next_attempt,
        amount_paid=1500 if invoice_status == "paid" else 0,
        amount_due=1500,
        currency="eur",
        created=period_end - MONTH,
    )
    facts = SubscriptionFacts(
        id="sub_1",
        status=status,
        current_period_end=period_end,
        cancel_at=None,
        cancel_at_period_end=False,
        ended_at=None,
        cancellation_reason=None,
        latest_invoice=invoice,
    )
    return Subscription(facts=facts, order_ref=str(payment.order_id), customer="cus_1")


async def _sync(db: FakePaymentDatabase, subscription: Subscription, at: datetime = NOW) -> str:
    uow = db.unit_of_work()
    async with uow:
        outcome = await sync_subscription(uow, subscription, policy=POLICY, via="webhook", now=at)
        await uow.commit()
    return outcome


async def test_the_first_paid_invoice_pays_the_order_once_and_asks_for_a_running_server() -> None:
    db = FakePaymentDatabase()
    payment = _payment(db)
    assert await _sync(db, _subscription(payment)) == "activated"
    assert await _sync(db, _subscription(payment)) == "no_change"
    assert len(db.events(OrderPaid)) == 1
    assert payment.status == PaymentStatus.PAID
    (changed,) = db.events(RentalChanged)
    assert changed.payload.cause == RentalCause.ACTIVATED and changed.payload.version == 1
    assert changed.payload.paid_through == NOW + MONTH
    (desired,) = db.events(DesiredServerStateChanged)
    assert desired.payload.state == DesiredServerState.RUNNING and desired.payload.version == 1
    assert desired.payload.limits.memory == 1024


async def test_three_renewals_extend_paid_through_and_never_touch_the_server() -> None:
    db = FakePaymentDatabase()
    payment = _payment(db)
    await _sync(db, _subscription(payment))
    for month in (2, 3, 4):
        assert await _sync(db, _subscription(payment, period_end=NOW + month * MONTH, reason="subscription_cycle")) == (
            "renewed"
        )
    renewals = [e for e in db.events(RentalChanged) if e.payload.cause == RentalCause.RENEWED]
    assert [e.payload.paid_through for e in renewals] == [NOW + m * MONTH for m in (2, 3, 4)]
    assert [e.payload.version for e in db.events(RentalChanged)] == [1, 2, 3, 4]
    assert len(db.events(DesiredServerStateChanged)) == 1
    assert len(db.events(OrderPaid)) == 1


async def test_a_lapse_asks_for_a_suspended_server_with_a_newer_version_and_recovery_for_a_running_one() -> None:
    db = FakePaymentDatabase()
    payment = _payment(db)
    await _sync(db, _subscription(payment))
    failing = _subscription(payment, "past_due", period_end=NOW + 2 * MONTH, invoice_status="open", next_attempt=NOW)
    assert await _sync(db, failing) == "payment_failed"
    assert len(db.events(DesiredServerStateChanged)) == 1  # past due: the server keeps running
    lapsed = _subscription(payment, "unpaid", period_end=NOW + 2 * MONTH, invoice_status="open", attempts=4)
    assert await _sync(db, lapsed) == "lapsed"
    recovered = _subscription(payment, period_end=NOW + 2 * MONTH, attempts=5, reason="subscription_cycle")
    assert await _sync(db, recovered) == "recovered"
    states = [(e.payload.state, e.payload.version) for e in db.events(DesiredServerStateChanged)]
    assert states == [
        (DesiredServerState.RUNNING, 1),
        (DesiredServerState.SUSPENDED, 3),
        (DesiredServerState.RUNNING, 4),
    ]
    history = await db.rentals.history(payment.order_id)
    assert [(t.from_phase, t.to_phase, t.cause) for t in history] == [
        ("awaiting_payment", "active", "activated"),
        ("active", "past_due", "payment_failed"),
        ("past_due", "lapsed", "lapsed"),
        ("lapsed", "active", "recovered"),
    ]


async def test_a_stale_read_after_a_newer_one_changes_nothing() -> None:
    db = FakePaymentDatabase()
    payment = _payment(db)
    await _sync(db, _subscription(payment, period_end=NOW + 2 * MONTH))
    assert await _sync(db, _subscription(payment, period_end=NOW + MONTH)) == "no_change"
    assert (await db.rentals.get(payment.order_id)).paid_through == NOW + 2 * MONTH  # type: ignore[union-attr]


async def test_a_subscription_of_an_order_not_known_here_is_kept_for_later() -> None:
    db = FakePaymentDatabase()
    payment = _payment(db)
    subscription = _subscription(payment)
    del db.payments.rows[payment.order_id]
    with pytest.raises(RetryLater):
        await _sync(db, subscription)


async def test_a_fixed_term_order_paid_through_its_session_starts_a_thirty_day_rental() -> None:
    db = FakePaymentDatabase()
    payment = _payment(db, billing=None)
    session = CheckoutSession(
        id="cs_1",
        status="complete",
        payment_status="paid",
        client_secret="s",
        amount_total=1500,
        currency="eur",
        expires_at=None,
        created=None,
        payment_intent="pi_1",
        payment_intent_status="succeeded",
        metadata={"serverOrderId": str(payment.order_id)},
        client_reference_id=str(payment.order_id),
    )
    fulfilment = Fulfilment(_NoStripe(), db.unit_of_work)
    await fulfilment.apply(session, via="webhook")
    (changed,) = db.events(RentalChanged)
    assert changed.payload.kind == "fixed_term" and changed.payload.phase == RentalPhase.ACTIVE
    assert changed.payload.paid_through is not None
    assert timedelta(days=29) < changed.payload.paid_through - datetime.now(UTC) <= timedelta(days=30)


def test_a_subscription_session_names_the_customer_and_carries_the_order_on_the_subscription() -> None:
    snapshot = Orders().new(amount=1500, billing=MONTHLY).snapshot
    params = session_params(snapshot, "https://shop/return?session_id={CHECKOUT_SESSION_ID}", NOW, customer="cus_9")
    assert params["mode"] == "subscription"
    assert params["customer"] == "cus_9" and "customer_email" not in params
    assert params["subscription_data"]["metadata"]["serverOrderId"] == str(snapshot.order_id)
    assert params["line_items"][0]["price_data"]["recurring"] == {"interval": "month", "interval_count": 1}
    assert "payment_intent_data" not in params  # refused in subscription mode
    one_time = session_params(Orders().new().snapshot, "https://shop/r?s={CHECKOUT_SESSION_ID}", NOW)
    assert one_time["mode"] == "payment"


class _NoStripe:
    async def create_checkout_session(self, params: dict[str, Any], *, idempotency_key: str) -> CheckoutSession:
        raise AssertionError("not called")

    async def retrieve_checkout_session(self, session_id: str) -> CheckoutSession:
        raise AssertionError("not called")

    async def expire_checkout_session(self, session_id: str) -> CheckoutSession:
        raise AssertionError("not called")
