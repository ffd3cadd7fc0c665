"""Unit tests of payment-service's pure rules: the state machine, fulfilment decisions, refund rules and
the checkout-session rules."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from payment_service.domain.checkout import (
    NextStep,
    RemoteVerdict,
    attempt_is_live,
    idempotency_key,
    mirrored_status,
    next_step,
    session_params,
    verdict,
)
from payment_service.domain.fulfilment import Decision, PaymentFacts, SessionFacts, decide
from payment_service.domain.payment import PAYMENT, TRANSITIONS, PaymentStatus, PaymentTrigger
from payment_service.domain.refunds import (
    REFUND,
    ProvisioningFacts,
    RefundPolicy,
    RefundState,
    RefundTrigger,
    duplicate_refund_key,
    order_refund_key,
    reason_for_closed_order,
    refund_due_at,
    refund_warranted,
    retry_delay,
    superseded_by_progress,
    why_not_refund_now,
)
from payment_service.domain.stripe_events import (
    ASYNC_FAILED,
    ASYNC_SUCCEEDED,
    COMPLETED,
    EXPIRED,
    STORED_EVENT,
    StoredEventStatus,
    StoredEventTrigger,
    gives_up,
    handled_as,
)
from payment_service.domain.stripe_events import retry_delay as event_retry_delay
from payment_service.testing import Orders
from spawnpoint_kit.state_machine import InvalidTransition

pytestmark = pytest.mark.unit

RANK = {PaymentStatus.PENDING_PAYMENT: 0, PaymentStatus.PAYMENT_PROCESSING: 1, PaymentStatus.PAID: 2}
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("status", "trigger"), list(itertools.product(PaymentStatus, PaymentTrigger)))
def test_every_state_and_trigger_pair_moves_forward_or_not_at_all(
    status: PaymentStatus, trigger: PaymentTrigger
) -> None:
    result = PAYMENT.next(status, trigger)
    assert result == TRANSITIONS.get((status, trigger))
    if result is not None and status in RANK and result in RANK:
        assert RANK[result] > RANK[status]


def test_nothing_leaves_a_terminal_state_except_towards_a_refund() -> None:
    for status in (PaymentStatus.PAYMENT_FAILED, PaymentStatus.REFUNDED, PaymentStatus.EXPIRED):
        assert all(PAYMENT.next(status, t) in (None, PaymentStatus.REFUND_PENDING) for t in PaymentTrigger)
    assert PAYMENT.next(PaymentStatus.EXPIRED, PaymentTrigger.PAID) is None
    assert PAYMENT.next(PaymentStatus.PAID, PaymentTrigger.EXPIRED) is None
    assert PAYMENT.next(PaymentStatus.PAID, PaymentTrigger.PROCESSING) is None
    assert PAYMENT.next(PaymentStatus.REFUNDED, PaymentTrigger.REFUND_REQUESTED) is None
    assert PAYMENT.next(PaymentStatus.REFUND_PENDING, PaymentTrigger.REFUND_REQUESTED) is None


def _payment(status: PaymentStatus, paid_session_id: str | None = None) -> PaymentFacts:
    return PaymentFacts(status=status, amount=500, currency="eur", paid_session_id=paid_session_id)


def _session(
    status: str = "complete", payment_status: str = "paid", amount: int = 500, currency: str = "EUR", sid: str = "cs_a"
) -> SessionFacts:
    return SessionFacts(
        session_id=sid, status=status, payment_status=payment_status, amount_total=amount, currency=currency
    )


@pytest.mark.parametrize(
    ("payment", "session", "expected"),
    [
        (
            _payment(PaymentStatus.PENDING_PAYMENT),
            _session(status="open", payment_status="unpaid"),
            Decision.NOT_COMPLETE,
        ),
        (
            _payment(PaymentStatus.PENDING_PAYMENT),
            _session(status="expired", payment_status="unpaid"),
            Decision.NOT_COMPLETE,
        ),
        (_payment(PaymentStatus.PENDING_PAYMENT), _session(), Decision.FULFIL),
        (_payment(PaymentStatus.PAYMENT_PROCESSING), _session(), Decision.FULFIL),
        (_payment(PaymentStatus.PAID, "cs_a"), _session(), Decision.ALREADY_PAID),
        (_payment(PaymentStatus.REFUNDED, "cs_a"), _session(), Decision.ALREADY_PAID),
        (_payment(PaymentStatus.PAID, "cs_b"), _session(), Decision.REFUND_DUPLICATE),
        (_payment(PaymentStatus.REFUND_PENDING, "cs_b"), _session(), Decision.REFUND_DUPLICATE),
        (_payment(PaymentStatus.EXPIRED), _session(), Decision.REFUND_ORDER),
        (_payment(PaymentStatus.PAYMENT_FAILED), _session(), Decision.REFUND_ORDER),
        (_payment(PaymentStatus.EXPIRED, "cs_b"), _session(), Decision.REFUND_DUPLICATE),
        # Finding 11: money for the wrong amount or currency is never kept.
        (_payment(PaymentStatus.PENDING_PAYMENT), _session(amount=499), Decision.REFUND_MISMATCH),
        (_payment(PaymentStatus.PENDING_PAYMENT), _session(currency="usd"), Decision.REFUND_MISMATCH),
        (_payment(PaymentStatus.PAYMENT_PROCESSING), _session(amount=499), Decision.REFUND_MISMATCH),
        (_payment(PaymentStatus.PAID, "cs_b"), _session(amount=499), Decision.REFUND_DUPLICATE),
        (_payment(PaymentStatus.EXPIRED), _session(amount=499), Decision.REFUND_ORDER),
        (_payment(PaymentStatus.REFUND_PENDING, "cs_a"), _session(amount=499), Decision.ALREADY_PAID),
        (_payment(PaymentStatus.PENDING_PAYMENT), _session(amount=499, payment_status="unpaid"), Decision.MISMATCH),
        (_payment(PaymentStatus.PENDING_PAYMENT), _session(payment_status="no_payment_required"), Decision.MISMATCH),
        (_payment(PaymentStatus.PENDING_PAYMENT), _session(payment_status="unpaid"), Decision.PROCESSING),
        (_payment(PaymentStatus.PAYMENT_PROCESSING), _session(payment_status="unpaid"), Decision.NO_CHANGE),
        (_payment(PaymentStatus.PAID, "cs_b"), _session(payment_status="unpaid"), Decision.NO_CHANGE),
        (_payment(PaymentStatus.PAYMENT_FAILED), _session(payment_status="unpaid"), Decision.NO_CHANGE),
    ],
)
def test_fulfilment_decisions(payment: PaymentFacts, session: SessionFacts, expected: Decision) -> None:
    assert decide(payment, session) == expected


def test_a_free_order_is_fulfilled_by_no_payment_required() -> None:
    free = PaymentFacts(status=PaymentStatus.PENDING_PAYMENT, amount=0, currency="eur", paid_session_id=None)
    assert decide(free, _session(amount=0, payment_status="no_payment_required")) == Decision.FULFIL


def _facts(**overrides: object) -> ProvisioningFacts:
    base: dict[str, object] = {
        "payment_status": PaymentStatus.PAID,
        "failed_at": NOW,
        "replayable": False,
        "progress_at": NOW - timedelta(minutes=1),
        "installed": False,
    }
    base.update(overrides)
    return ProvisioningFacts(**base)  # type: ignore[arg-type]


def test_a_provisioning_refund_is_warranted_only_for_a_paid_never_installed_unfixable_latest_failure() -> None:
    assert refund_warranted(_facts())
    assert refund_warranted(_facts(progress_at=None))
    assert not refund_warranted(_facts(replayable=True))
    assert not refund_warranted(_facts(replayable=None))
    assert not refund_warranted(_facts(installed=True))
    assert not refund_warranted(_facts(progress_at=NOW + timedelta(seconds=1)))
    assert not refund_warranted(_facts(failed_at=None))
    for status in PaymentStatus:
        if status != PaymentStatus.PAID:
            assert not refund_warranted(_facts(payment_status=status))


def test_the_policy_sets_when_the_refund_runs() -> None:
    hold = timedelta(minutes=15)
    assert refund_due_at(RefundPolicy.IMMEDIATE, hold, NOW, NOW) == NOW
    assert refund_due_at(RefundPolicy.HOLD, hold, NOW, NOW) == NOW + hold
    assert refund_due_at(RefundPolicy.HOLD, hold, NOW - timedelta(hours=1), NOW) == NOW  # a late event
    assert refund_due_at(RefundPolicy.NEVER, hold, NOW, NOW) is None


def test_refund_keys_reasons_and_backoff() -> None:
    order_id = uuid.UUID(int=7)
    assert order_refund_key(order_id) == f"refund:{order_id}"
    assert duplicate_refund_key(order_id, "pi_1") == f"refund:{order_id}:pi_1"
    assert reason_for_closed_order(PaymentStatus.EXPIRED) == "paid_after_expiry"
    assert reason_for_closed_order(PaymentStatus.PAYMENT_FAILED) == "paid_after_failure"
    assert [retry_delay(n).total_seconds() for n in (0, 1, 2, 10, 40)] == [1, 2, 4, 300, 300]


def test_what_a_checkout_request_does_with_our_latest_attempt() -> None:
    later = NOW + timedelta(hours=1)
    assert next_step(None, None, NOW) == NextStep.CREATE
    assert next_step("creating", later, NOW) == NextStep.RESEND
    assert next_step("creating", NOW + timedelta(minutes=29), NOW) == NextStep.CREATE
    assert next_step("open", later, NOW) == NextStep.VERIFY
    assert next_step("complete", later, NOW) == NextStep.VERIFY
    assert next_step("expired", later, NOW) == NextStep.CREATE
    assert next_step("abandoned", later, NOW) == NextStep.CREATE


def test_what_stripes_answer_means_for_the_latest_session() -> None:
    assert verdict("open", NOW + timedelta(minutes=10), NOW) == RemoteVerdict.REUSE
    assert verdict("open", NOW + timedelta(minutes=1), NOW) == RemoteVerdict.EXPIRE_THEN_REPLACE
    assert verdict("expired", NOW + timedelta(minutes=10), NOW) == RemoteVerdict.REPLACE
    assert verdict("complete", NOW + timedelta(minutes=10), NOW) == RemoteVerdict.PAID


def test_which_attempts_can_still_take_money() -> None:
    assert attempt_is_live("open", NOW - timedelta(hours=1), NOW)
    assert attempt_is_live("creating", NOW + timedelta(minutes=1), NOW)
    assert not attempt_is_live("creating", NOW, NOW)
    assert not any(attempt_is_live(s, NOW + timedelta(hours=1), NOW) for s in ("expired", "complete", "abandoned"))


def test_session_params_carry_the_order_and_its_price() -> None:
    order = Orders().new(amount=1999, currency="eur")
    snap = order.snapshot
    expires = NOW + timedelta(minutes=60)
    params = session_params(snap, "https://shop/r?session_id={CHECKOUT_SESSION_ID}", expires)
    oid = str(snap.order_id)
    assert params["mode"] == "payment" and params["ui_mode"] == "embedded_page"
    assert params["line_items"][0]["price_data"]["unit_amount"] == 1999
    assert params["line_items"][0]["price_data"]["currency"] == "eur"
    assert params["metadata"] == {"serverOrderId": oid} == params["payment_intent_data"]["metadata"]
    assert params["client_reference_id"] == oid
    assert params["expires_at"] == int(expires.timestamp())
    assert "{CHECKOUT_SESSION_ID}" in params["return_url"]
    assert "payment_method_types" not in params and "success_url" not in params
    assert idempotency_key(oid, 2) == f"checkout-session:{oid}:2"


def test_a_refund_moves_only_along_its_table_and_its_final_states_stay_final() -> None:
    scheduled = REFUND.step(RefundState.CANCELLED, RefundTrigger.SCHEDULE)
    executing = REFUND.step(scheduled, RefundTrigger.EXECUTE)
    assert (scheduled, executing) == (RefundState.SCHEDULED, RefundState.EXECUTING)
    assert REFUND.step(executing, RefundTrigger.EXECUTE) == RefundState.EXECUTING  # again after a transient error
    assert REFUND.step(executing, RefundTrigger.SUCCEED) == RefundState.SUCCEEDED
    assert REFUND.step(executing, RefundTrigger.FAIL) == RefundState.FAILED
    assert REFUND.step(scheduled, RefundTrigger.CANCEL) == RefundState.CANCELLED
    for final in (RefundState.SUCCEEDED, RefundState.FAILED):
        assert list(REFUND.triggers_from(final)) == []
    assert not REFUND.allows(RefundState.EXECUTING, RefundTrigger.CANCEL), "money on its way is not cancelled"
    assert not REFUND.allows(RefundState.FAILED, RefundTrigger.SCHEDULE), "only an operator retries a refusal"
    with pytest.raises(InvalidTransition):
        REFUND.step(RefundState.SUCCEEDED, RefundTrigger.FAIL)


def test_a_refund_that_came_due_goes_ahead_only_while_it_is_still_warranted() -> None:
    assert why_not_refund_now(None, "provisioning_failed") == "the order is not known here"
    assert why_not_refund_now(_facts(), "provisioning_failed") is None
    assert why_not_refund_now(_facts(installed=True), "provisioning_failed") == "no longer warranted when due"
    assert why_not_refund_now(_facts(payment_status=PaymentStatus.REFUND_PENDING, installed=True), "x") is None
    assert why_not_refund_now(_facts(payment_status=PaymentStatus.PAID), "paid_after_expiry") == "the payment is paid"
    assert superseded_by_progress("provisioning_failed", NOW, NOW + timedelta(seconds=1))
    assert superseded_by_progress("provisioning_failed", None, NOW)
    assert not superseded_by_progress("provisioning_failed", NOW, NOW)
    assert not superseded_by_progress("duplicate_payment", NOW, NOW + timedelta(seconds=1))


def test_which_handler_a_stored_event_gets_and_how_a_failing_one_is_retried() -> None:
    def session(status: str, payment_status: str) -> SessionFacts:
        return SessionFacts("cs_a", status, payment_status, 500, "eur")

    paid, unpaid, gone = session("complete", "paid"), session("complete", "unpaid"), session("expired", "unpaid")
    assert {handled_as(t, paid) for t in (COMPLETED, ASYNC_SUCCEEDED, ASYNC_FAILED, EXPIRED)} == {COMPLETED}
    assert handled_as(ASYNC_FAILED, unpaid) == ASYNC_FAILED and handled_as(EXPIRED, gone) == EXPIRED
    assert handled_as(ASYNC_SUCCEEDED, unpaid) == ASYNC_SUCCEEDED
    assert [event_retry_delay(n).total_seconds() for n in (1, 2, 3, 10, 40)] == [0.5, 1, 2, 256, 300]
    assert not gives_up(NOW - timedelta(days=3), NOW) and gives_up(NOW - timedelta(days=3, seconds=1), NOW)
    for trigger, target in ((StoredEventTrigger.APPLIED, "processed"), (StoredEventTrigger.GIVEN_UP, "abandoned")):
        assert STORED_EVENT.step(StoredEventStatus.PENDING, trigger) == target
        assert not any(STORED_EVENT.allows(StoredEventStatus(target), t) for t in StoredEventTrigger)


def test_our_copy_of_a_session_follows_the_states_stripe_reports() -> None:
    assert mirrored_status("open", "complete") == "complete"
    assert mirrored_status("creating", "open") == "open"
    assert mirrored_status("open", "open") is None
    assert mirrored_status("open", None) is None
    assert mirrored_status("abandoned", "abandoned") is None
