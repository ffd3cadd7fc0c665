"""Fulfilment's decisions, the stored-event runner and the ownership checks, with the in-memory unit of work
and a small fake of Stripe: no database, no Stripe stand-in."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import stripe

from payment_service.adapters.order_client import OrderNotFound
from payment_service.adapters.repositories import ClaimedEvent
from payment_service.adapters.stripe_gateway import CheckoutSession
from payment_service.adapters.tables import CheckoutSessionRow, PaymentRow, StripeEventRow
from payment_service.domain.payment import PaymentStatus
from payment_service.domain.stripe_events import (
    ASYNC_FAILED,
    COMPLETED,
    EXPIRED,
    HANDLED_TYPES,
    MONEY_BACK_TYPES,
    SESSION_TYPES,
    SUBSCRIPTION_TYPES,
    RetryLater,
    StoredEventStatus,
)
from payment_service.service_layer.checkout import CheckoutConfig, CheckoutService
from payment_service.service_layer.event_intake import stored_row
from payment_service.service_layer.fulfilment import Fulfilment, expire, expire_if_nothing_live, fail
from payment_service.service_layer.handlers import stripe_handlers
from payment_service.service_layer.return_page import SessionNotFound, session_status
from payment_service.service_layer.stored_events import StoredEventRunner, StripeHandlers
from payment_service.service_layer.unit_of_work import PaymentUnitOfWork
from payment_service.testing import FakePaymentDatabase, Orders
from spawnpoint_contracts import OrderExpired, OrderPaid, PaymentFailed, PaymentProcessing
from spawnpoint_kit.auth import Principal

pytestmark = pytest.mark.unit

NOW = datetime.now(UTC)


def _stripe_error(message: str, *, http_status: int, code: str | None = None) -> stripe.InvalidRequestError:
    """The SDK's own error, as the real API's answer turns into one."""
    error: stripe.InvalidRequestError = stripe.InvalidRequestError(  # type: ignore[no-untyped-call]  # the SDK's errors are not annotated
        message, "id", code=code, http_status=http_status
    )
    return error


class FakeStripe:
    """Checkout Sessions as Stripe reports them now; remembers what it was asked to expire."""

    def __init__(self) -> None:
        self.sessions: dict[str, CheckoutSession] = {}
        self.expired: list[str] = []
        self.retrieved: list[str] = []

    def has(self, session: CheckoutSession) -> CheckoutSession:
        self.sessions[session.id] = session
        return session

    async def create_checkout_session(self, params: dict[str, object], *, idempotency_key: str) -> CheckoutSession:
        raise AssertionError("no test here creates a session")

    async def retrieve_checkout_session(self, session_id: str) -> CheckoutSession:
        self.retrieved.append(session_id)
        if session_id not in self.sessions:
            raise _stripe_error("No such checkout.session", code="resource_missing", http_status=404)
        return self.sessions[session_id]

    async def expire_checkout_session(self, session_id: str) -> CheckoutSession:
        self.expired.append(session_id)
        current = self.sessions[session_id]
        if current.status != "open":
            raise _stripe_error(f"This Checkout Session has a status of `{current.status}`.", http_status=400)
        self.sessions[session_id] = replace(current, status="expired")
        return self.sessions[session_id]


def _session(
    order_id: uuid.UUID,
    sid: str = "cs_a",
    *,
    status: str = "complete",
    payment_status: str = "paid",
    amount: int = 500,
    pi: str | None = None,
) -> CheckoutSession:
    return CheckoutSession(
        id=sid,
        status=status,
        payment_status=payment_status,
        client_secret=f"{sid}_secret",
        amount_total=amount,
        currency="eur",
        expires_at=None,
        created=None,
        payment_intent=pi or f"pi_{sid}",
        payment_intent_status=None,
        metadata={"serverOrderId": str(order_id)},
        client_reference_id=str(order_id),
    )


def _payment(
    db: FakePaymentDatabase,
    status: PaymentStatus = PaymentStatus.PENDING_PAYMENT,
    *,
    paid_session_id: str | None = None,
    payment_intent: str | None = None,
) -> PaymentRow:
    snapshot = Orders().new(amount=500).snapshot
    row = PaymentRow(
        order_id=snapshot.order_id,
        user_id=snapshot.user_id,
        email=snapshot.email,
        amount=500,
        currency="eur",
        status=status,
        order_snapshot=snapshot.model_dump(mode="json"),
        correlation_id="c-1",
        paid_session_id=paid_session_id,
        payment_intent=payment_intent,
    )
    db.payments.rows[row.order_id] = row
    return row


def _attempt(
    db: FakePaymentDatabase,
    order_id: uuid.UUID,
    sid: str | None,
    *,
    status: str = "open",
    attempt: int = 1,
    expires_at: datetime | None = None,
) -> CheckoutSessionRow:
    row = CheckoutSessionRow(
        order_id=order_id,
        attempt=attempt,
        idempotency_key=f"checkout-session:{order_id}:{attempt}",
        params={},
        stripe_session_id=sid,
        status=status,
        expires_at=expires_at or NOW + timedelta(hours=1),
        created_at=NOW - timedelta(minutes=5),
    )
    db.checkout_sessions.add(row)
    return row


def _status(payment: PaymentRow) -> PaymentStatus:
    """Read afresh (a handler changed it in place)."""
    return payment.status


def _fulfilment(db: FakePaymentDatabase, gateway: FakeStripe | None = None) -> Fulfilment:
    return Fulfilment(gateway or FakeStripe(), db.unit_of_work)


async def _expire(db: FakePaymentDatabase, checkout: CheckoutSession) -> str:
    uow = db.unit_of_work()
    async with uow:
        outcome = await expire(checkout, uow)
        await uow.commit()
    return outcome


async def _fail(db: FakePaymentDatabase, checkout: CheckoutSession) -> str:
    uow = db.unit_of_work()
    async with uow:
        outcome = await fail(checkout, uow)
        await uow.commit()
    return outcome


# fulfilment --------------------------------------------------------------------------------------------


async def test_a_paid_session_fulfils_the_order_once_and_the_same_session_again_is_already_paid() -> None:
    db = FakePaymentDatabase()
    payment = _payment(db)
    _attempt(db, payment.order_id, "cs_a")
    fulfilment = _fulfilment(db)
    first = await fulfilment.apply(_session(payment.order_id), via="webhook")
    again = await fulfilment.apply(_session(payment.order_id), via="sweeper")
    assert (first.outcome, first.status) == ("fulfilled", PaymentStatus.PAID)
    assert (again.outcome, again.status) == ("already_paid", PaymentStatus.PAID)
    (paid,) = db.events(OrderPaid)
    assert paid.payload.session_id == "cs_a" and paid.payload.fulfilled_via == "webhook"
    assert payment.paid_session_id == "cs_a" and payment.payment_intent == "pi_cs_a" and payment.paid_at is not None
    (row,) = await db.checkout_sessions.of_order(payment.order_id)
    assert row.status == "complete", "our copy of the session follows what Stripe said"


async def test_the_other_open_sessions_are_expired_at_stripe_only_after_the_commit() -> None:
    db = FakePaymentDatabase()
    payment = _payment(db)
    _attempt(db, payment.order_id, "cs_a")
    other = _attempt(db, payment.order_id, "cs_b", attempt=2)
    stripe_ = FakeStripe()
    stripe_.has(_session(payment.order_id, "cs_b", status="open", payment_status="unpaid"))
    fulfilment = _fulfilment(db, stripe_)
    uow = db.unit_of_work()
    async with uow:
        assert await fulfilment.fulfil(_session(payment.order_id), uow, via="webhook") == "fulfilled"
        assert stripe_.expired == [], "no Stripe call while the transaction is open"
        await uow.commit()
    assert stripe_.expired == ["cs_b"] and other.status == "expired"

    rolled_back = FakePaymentDatabase()
    lone = _payment(rolled_back)
    _attempt(rolled_back, lone.order_id, "cs_b")
    stripe_ = FakeStripe()
    uow = rolled_back.unit_of_work()
    async with uow:
        await _fulfilment(rolled_back, stripe_).fulfil(_session(lone.order_id, "cs_c"), uow, via="webhook")
    assert stripe_.expired == [] and rolled_back.events(OrderPaid) == []


async def test_a_session_paid_while_it_was_being_closed_is_refunded_as_a_duplicate() -> None:
    db = FakePaymentDatabase()
    payment = _payment(db)
    _attempt(db, payment.order_id, "cs_a")
    _attempt(db, payment.order_id, "cs_b", attempt=2)
    stripe_ = FakeStripe()
    stripe_.has(_session(payment.order_id, "cs_b"))  # complete at Stripe, still open in our copy
    await _fulfilment(db, stripe_).apply(_session(payment.order_id), via="webhook")
    (refund,) = db.refunds.rows.values()
    assert refund.idempotency_key == f"refund:{payment.order_id}:pi_cs_b" and refund.kind == "duplicate"
    assert len(db.events(OrderPaid)) == 1 and payment.paid_session_id == "cs_a"


async def test_a_delayed_method_waits_in_processing_once() -> None:
    db = FakePaymentDatabase()
    payment = _payment(db)
    fulfilment = _fulfilment(db)
    delayed = _session(payment.order_id, payment_status="unpaid")
    assert (await fulfilment.apply(delayed, via="webhook")).outcome == "processing"
    assert (await fulfilment.apply(delayed, via="webhook")).outcome == "no_change"
    assert payment.status == PaymentStatus.PAYMENT_PROCESSING
    assert len(db.events(PaymentProcessing)) == 1 and db.events(OrderPaid) == []


async def test_money_for_an_expired_order_schedules_the_orders_refund() -> None:
    db = FakePaymentDatabase()
    payment = _payment(db, PaymentStatus.EXPIRED)
    result = await _fulfilment(db).apply(_session(payment.order_id, "cs_late"), via="webhook")
    assert (result.outcome, result.status) == ("paid_after_close", PaymentStatus.REFUND_PENDING)
    (refund,) = db.refunds.rows.values()
    assert refund.idempotency_key == f"refund:{payment.order_id}" and refund.kind == "order"
    assert refund.reason == "paid_after_expiry" and refund.status == "scheduled"
    assert refund.payment_intent == "pi_cs_late" and payment.paid_session_id == "cs_late"
    assert db.events(OrderPaid) == []


async def test_a_second_paid_session_is_refunded_on_its_own_once() -> None:
    db = FakePaymentDatabase()
    payment = _payment(db, PaymentStatus.PAID, paid_session_id="cs_a", payment_intent="pi_cs_a")
    fulfilment = _fulfilment(db)
    second = _session(payment.order_id, "cs_b")
    assert (await fulfilment.apply(second, via="webhook")).outcome == "duplicate_payment"
    assert (await fulfilment.apply(second, via="sweeper")).outcome == "duplicate_payment"
    (refund,) = db.refunds.rows.values()
    assert refund.idempotency_key == f"refund:{payment.order_id}:pi_cs_b" and refund.kind == "duplicate"
    assert payment.status == PaymentStatus.PAID and payment.paid_session_id == "cs_a"
    assert db.events(OrderPaid) == []


async def test_money_for_the_wrong_amount_is_refunded_and_the_order_ends() -> None:
    """Finding 11: it used to be only logged, the money kept and the order left pending."""
    db = FakePaymentDatabase()
    payment = _payment(db)
    result = await _fulfilment(db).apply(_session(payment.order_id, amount=1), via="webhook")
    assert (result.outcome, result.status) == ("refund_mismatch", PaymentStatus.REFUND_PENDING)
    assert db.events(OrderPaid) == []
    (refund,) = db.refunds.rows.values()
    assert (refund.reason, refund.amount) == ("amount_mismatch", 1)


async def test_a_session_with_the_wrong_amount_that_took_no_money_changes_nothing() -> None:
    db = FakePaymentDatabase()
    payment = _payment(db)
    result = await _fulfilment(db).apply(_session(payment.order_id, amount=1, payment_status="unpaid"), via="webhook")
    assert (result.outcome, result.status) == ("mismatch", PaymentStatus.PENDING_PAYMENT)
    assert db.events(OrderPaid) == [] and not db.refunds.rows


async def test_a_session_for_an_order_not_known_here_is_kept_for_later() -> None:
    db = FakePaymentDatabase()
    unknown = _session(uuid.uuid4())
    with pytest.raises(RetryLater):
        await _fulfilment(db).apply(unknown, via="webhook")
    with pytest.raises(RetryLater):
        await _fail(db, replace(unknown, payment_status="unpaid"))
    with pytest.raises(RetryLater):
        await _expire(db, replace(unknown, status="expired", payment_status="unpaid"))
    assert db.commits == 0 and not db.payments.rows


async def test_a_failed_delayed_payment_fails_once_and_never_a_paid_one() -> None:
    db = FakePaymentDatabase()
    payment = _payment(db, PaymentStatus.PAYMENT_PROCESSING)
    failed = _session(payment.order_id, payment_status="unpaid")
    assert await _fail(db, failed) == "payment_failed"
    assert await _fail(db, failed) == "no_change"
    assert payment.status == PaymentStatus.PAYMENT_FAILED
    (event,) = db.events(PaymentFailed)
    assert event.payload.reason == "async_payment_failed" and not db.refunds.rows
    paid = _payment(db, PaymentStatus.PAID, paid_session_id="cs_a")
    assert await _fail(db, _session(paid.order_id, payment_status="unpaid")) == "no_change"
    assert paid.status == PaymentStatus.PAID


async def test_an_expired_session_expires_the_order_only_when_no_sibling_is_live() -> None:
    db = FakePaymentDatabase()
    payment = _payment(db)
    _attempt(db, payment.order_id, "cs_a")
    _attempt(db, payment.order_id, "cs_b", attempt=2)  # the replacement the customer was handed
    gone = _session(payment.order_id, "cs_a", status="expired", payment_status="unpaid")
    assert await _expire(db, gone) == "no_change"
    assert _status(payment) == PaymentStatus.PENDING_PAYMENT and db.events(OrderExpired) == []
    assert await _expire(db, replace(gone, id="cs_b")) == "expired"
    (expired,) = db.events(OrderExpired)
    assert expired.payload.session_id == "cs_b" and _status(payment) == PaymentStatus.EXPIRED
    assert await _expire(db, gone) == "no_change", "expiring twice announces once"


async def test_an_order_whose_attempt_never_reached_the_customer_expires_after_its_window() -> None:
    db = FakePaymentDatabase()
    payment = _payment(db)
    unfinished = _attempt(db, payment.order_id, None, status="creating", expires_at=NOW + timedelta(minutes=30))
    for now, expected in ((NOW, "no_change"), (NOW + timedelta(hours=1), "expired")):
        uow = db.unit_of_work()
        async with uow:
            assert await expire_if_nothing_live(payment.order_id, uow, now=now) == expected
            await uow.commit()
    assert unfinished.status == "abandoned" and payment.status == PaymentStatus.EXPIRED
    assert len(db.events(OrderExpired)) == 1


# the stored-event runner --------------------------------------------------------------------------------


def _stored(db: FakePaymentDatabase, event_type: str, checkout: CheckoutSession) -> ClaimedEvent:
    event_id = f"evt_{uuid.uuid4().hex}"
    event: dict[str, Any] = {
        "id": event_id,
        "type": event_type,
        "data": {"object": {"id": checkout.id, "metadata": {"serverOrderId": checkout.order_ref}}},
    }
    row = stored_row(event)
    assert row is not None
    db.stripe_events.rows[event_id] = StripeEventRow(**row)
    return ClaimedEvent(event_id, event_type, checkout.id, uuid.UUID(str(checkout.order_ref)), 0)


def _runner(db: FakePaymentDatabase, stripe_: FakeStripe, handlers: StripeHandlers | None = None) -> StoredEventRunner:
    return StoredEventRunner(handlers or stripe_handlers(_fulfilment(db, stripe_)), db.unit_of_work, stripe_)


def test_the_session_table_handles_exactly_the_session_types_the_webhook_keeps() -> None:
    """Subscription and invoice events need no table: their subscription is read and synced."""
    assert set(stripe_handlers(_fulfilment(FakePaymentDatabase()))) == SESSION_TYPES
    assert SESSION_TYPES | SUBSCRIPTION_TYPES | MONEY_BACK_TYPES == HANDLED_TYPES


async def test_an_applied_event_is_marked_processed_with_its_outcome_in_the_same_commit() -> None:
    db = FakePaymentDatabase()
    payment = _payment(db)
    stripe_ = FakeStripe()
    claimed = _stored(db, COMPLETED, stripe_.has(_session(payment.order_id)))
    assert await _runner(db, stripe_).run(claimed) is True
    row = db.stripe_events.rows[claimed.id]
    assert row.status == StoredEventStatus.PROCESSED and row.outcome == "fulfilled" and row.processed_at
    (unit,) = [u for u in db.units if u.commits]
    assert unit.events(OrderPaid), "the effect and the processed mark commit together"


async def test_an_event_already_processed_applies_nothing() -> None:
    db = FakePaymentDatabase()
    payment = _payment(db)
    stripe_ = FakeStripe()
    claimed = _stored(db, COMPLETED, stripe_.has(_session(payment.order_id)))
    db.stripe_events.rows[claimed.id].status = StoredEventStatus.PROCESSED
    called: list[str] = []

    async def spy(checkout: CheckoutSession, uow: PaymentUnitOfWork) -> str:
        called.append(checkout.id)
        return "fulfilled"

    assert await _runner(db, stripe_, dict.fromkeys(HANDLED_TYPES, spy)).apply(claimed) == "duplicate_event"
    assert called == [] and payment.status == PaymentStatus.PENDING_PAYMENT and db.events(OrderPaid) == []


async def test_a_session_stripe_reports_paid_is_fulfilled_whatever_the_event_type() -> None:
    db = FakePaymentDatabase()
    stripe_ = FakeStripe()
    for event_type in (EXPIRED, ASYNC_FAILED):
        payment = _payment(db)
        claimed = _stored(db, event_type, stripe_.has(_session(payment.order_id, f"cs_{event_type}")))
        assert await _runner(db, stripe_).apply(claimed) == "fulfilled"
        assert payment.status == PaymentStatus.PAID


async def test_an_event_that_cannot_be_applied_yet_is_kept_with_a_backoff_then_abandoned() -> None:
    db = FakePaymentDatabase()
    stripe_ = FakeStripe()
    unknown_order = _stored(db, COMPLETED, stripe_.has(_session(uuid.uuid4())))
    unknown_session = _stored(db, COMPLETED, _session(uuid.uuid4(), "cs_nowhere"))
    runner = _runner(db, stripe_)
    for claimed in (unknown_order, unknown_session):
        assert await runner.run(claimed) is False
        row = db.stripe_events.rows[claimed.id]
        assert row.status == StoredEventStatus.PENDING and row.attempts == 1
        assert row.next_attempt_at > datetime.now(UTC) and "RetryLater" in (row.last_error or "")
    row = db.stripe_events.rows[unknown_order.id]
    row.received_at -= timedelta(days=3, minutes=1)
    assert await runner.run(unknown_order) is False
    assert row.status == StoredEventStatus.ABANDONED and row.outcome == "abandoned" and row.attempts == 2
    assert await runner.apply(unknown_order) == "duplicate_event", "an abandoned event is never applied"


# who may see what ------------------------------------------------------------------------------------------


async def test_a_checkout_for_another_customers_order_is_not_found_and_stores_nothing() -> None:
    db = FakePaymentDatabase()
    orders = Orders()
    bobs = orders.new(user_id="bob")
    stripe_ = FakeStripe()
    checkout = CheckoutService(
        db.unit_of_work,
        stripe_,
        _fulfilment(db, stripe_),
        CheckoutConfig("https://shop.test/r?session_id={CHECKOUT_SESSION_ID}", timedelta(hours=1)),
        orders,
    )
    for order_id in (bobs.snapshot.order_id, uuid.uuid4()):
        with pytest.raises(OrderNotFound):
            await checkout.open_for(Principal("alice"), order_id, bearer_token="t")
    assert not db.payments.rows and db.commits == 0 and stripe_.retrieved == []


async def test_the_return_page_answers_only_the_sessions_owner() -> None:
    db = FakePaymentDatabase()
    payment = _payment(db)
    _attempt(db, payment.order_id, "cs_a")
    stripe_ = FakeStripe()
    stripe_.has(_session(payment.order_id))
    for who, session_id in (("mallory", "cs_a"), (payment.user_id, "cs_unknown")):
        with pytest.raises(SessionNotFound):
            await session_status(db.unit_of_work(), _fulfilment(db, stripe_), session_id, user_id=who)
    assert stripe_.retrieved == []
    view = await session_status(db.unit_of_work(), _fulfilment(db, stripe_), "cs_a", user_id=payment.user_id)
    assert view.order_status == PaymentStatus.PAID and view.fulfilment == "fulfilled"
