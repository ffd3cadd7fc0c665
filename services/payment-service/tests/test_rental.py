"""The rental state machine as a table, and ``assess``: what Stripe's state means for a rental, whatever
order and however often the events that led there arrived."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from payment_service.domain.rental import (
    RENTAL,
    TRANSITIONS,
    Hold,
    InvoiceFacts,
    RentalPolicy,
    RentalState,
    SubscriptionFacts,
    apply_dispute_outcome,
    assess,
    desired_server_state,
    fixed_term_expired,
    fixed_term_paid,
    path,
    place_hold,
)
from spawnpoint_contracts import DesiredServerState, RentalCause, RentalPhase
from spawnpoint_kit.state_machine import InvalidTransition

pytestmark = pytest.mark.unit

P, C = RentalPhase, RentalCause
NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
MONTH = timedelta(days=30)
POLICY = RentalPolicy()

# Every allowed move, written out once more: a change to the table is a change to this test.
EXPECTED = {
    (P.AWAITING_PAYMENT, C.ACTIVATED): P.ACTIVE,
    (P.AWAITING_PAYMENT, C.ENDED): P.ENDED,
    (P.ACTIVE, C.RENEWED): P.ACTIVE,
    (P.ACTIVE, C.PLAN_CHANGED): P.ACTIVE,
    (P.ACTIVE, C.PAYMENT_FAILED): P.PAST_DUE,
    (P.ACTIVE, C.PAYMENT_ACTION_REQUIRED): P.PAST_DUE,
    (P.ACTIVE, C.CANCELLATION_SCHEDULED): P.CANCELLING,
    (P.ACTIVE, C.LAPSED): P.LAPSED,
    (P.ACTIVE, C.REFUNDED): P.LAPSED,
    (P.ACTIVE, C.DISPUTE_OPENED): P.LAPSED,
    (P.ACTIVE, C.ENDED): P.ENDED,
    (P.PAST_DUE, C.PAYMENT_FAILED): P.PAST_DUE,
    (P.PAST_DUE, C.PAYMENT_ACTION_REQUIRED): P.PAST_DUE,
    (P.PAST_DUE, C.PLAN_CHANGED): P.PAST_DUE,
    (P.PAST_DUE, C.RECOVERED): P.ACTIVE,
    (P.PAST_DUE, C.LAPSED): P.LAPSED,
    (P.PAST_DUE, C.REFUNDED): P.LAPSED,
    (P.PAST_DUE, C.DISPUTE_OPENED): P.LAPSED,
    (P.PAST_DUE, C.ENDED): P.ENDED,
    (P.CANCELLING, C.CANCELLATION_UNDONE): P.ACTIVE,
    (P.CANCELLING, C.PLAN_CHANGED): P.CANCELLING,
    (P.CANCELLING, C.REFUNDED): P.LAPSED,
    (P.CANCELLING, C.DISPUTE_OPENED): P.LAPSED,
    (P.CANCELLING, C.ENDED): P.ENDED,
    (P.LAPSED, C.RECOVERED): P.ACTIVE,
    (P.LAPSED, C.RENEWED): P.ACTIVE,
    (P.LAPSED, C.DISPUTE_WON): P.ACTIVE,
    (P.LAPSED, C.DISPUTE_LOST): P.ENDED,
    (P.LAPSED, C.TERMINATION_WARNING): P.LAPSED,
    (P.LAPSED, C.ENDED): P.ENDED,
    (P.ENDED, C.TERMINATION_WARNING): P.ENDED,
}


def test_the_table_is_exactly_the_documented_one() -> None:
    assert TRANSITIONS == EXPECTED


@pytest.mark.parametrize(("phase", "cause"), list(itertools.product(RentalPhase, RentalCause)))
def test_every_pair_not_in_the_table_is_refused(phase: RentalPhase, cause: RentalCause) -> None:
    if (phase, cause) in EXPECTED:
        assert RENTAL.step(phase, cause) == EXPECTED[(phase, cause)]
    else:
        with pytest.raises(InvalidTransition):
            RENTAL.step(phase, cause)


def test_an_ended_rental_never_runs_again() -> None:
    assert all(RENTAL.step(P.ENDED, cause) == P.ENDED for cause in RENTAL.triggers_from(P.ENDED))


def invoice(
    status: str = "paid",
    *,
    reason: str = "subscription_cycle",
    attempts: int = 1,
    next_attempt: datetime | None = None,
    created: datetime = NOW,
    id: str = "in_1",
) -> InvoiceFacts:
    return InvoiceFacts(
        id=id,
        status=status,
        billing_reason=reason,
        attempt_count=attempts,
        next_payment_attempt=next_attempt,
        amount_paid=1500 if status == "paid" else 0,
        amount_due=1500,
        currency="eur",
        created=created,
    )


def sub(
    status: str = "active",
    *,
    period_end: datetime = NOW + MONTH,
    latest: InvoiceFacts | None = None,
    cancel_at_period_end: bool = False,
    cancel_at: datetime | None = None,
    reason: str | None = None,
) -> SubscriptionFacts:
    return SubscriptionFacts(
        id="sub_1",
        status=status,
        current_period_end=period_end,
        cancel_at=cancel_at,
        cancel_at_period_end=cancel_at_period_end,
        ended_at=None,
        cancellation_reason=reason,
        latest_invoice=latest or invoice(),
    )


ACTIVE = RentalState(phase=P.ACTIVE, paid_through=NOW, renews_at=NOW, invoice_id="in_0")


def test_the_first_paid_invoice_activates_with_what_was_paid_for() -> None:
    result = assess(RentalState(P.AWAITING_PAYMENT), sub(latest=invoice(reason="subscription_create")), POLICY, NOW)
    assert result.cause == C.ACTIVATED
    assert result.state.phase == P.ACTIVE
    assert result.state.paid_through == NOW + MONTH
    assert result.state.renews_at == NOW + MONTH


def test_an_incomplete_subscription_is_still_awaiting_payment_and_has_paid_for_nothing() -> None:
    result = assess(RentalState(P.AWAITING_PAYMENT), sub("incomplete", latest=invoice("open")), POLICY, NOW)
    assert not result.changed
    assert result.state.paid_through is None


def test_a_renewal_extends_paid_through_and_the_same_state_seen_again_changes_nothing() -> None:
    renewed = assess(ACTIVE, sub(), POLICY, NOW)
    assert renewed.cause == C.RENEWED
    assert renewed.state.paid_through == NOW + MONTH
    again = assess(renewed.state, sub(), POLICY, NOW)
    assert not again.changed
    assert again.state == renewed.state


def test_an_older_read_never_shortens_what_was_paid_for() -> None:
    renewed = assess(ACTIVE, sub(period_end=NOW + 2 * MONTH), POLICY, NOW).state
    stale = assess(renewed, sub(period_end=NOW + MONTH), POLICY, NOW)
    assert not stale.changed
    assert stale.state.paid_through == NOW + 2 * MONTH


def test_a_failed_renewal_is_the_grace_period_with_the_next_attempt_and_a_running_server() -> None:
    retry = NOW + timedelta(days=3)
    failing = replace(
        sub("past_due", period_end=NOW + MONTH, latest=invoice("open", next_attempt=retry)), current_period_start=NOW
    )
    result = assess(ACTIVE, failing, POLICY, NOW)
    assert result.cause == C.PAYMENT_FAILED
    assert result.state.phase == P.PAST_DUE
    assert result.state.next_payment_attempt == retry
    assert result.state.grace_until == NOW + POLICY.grace
    assert result.state.paid_through == NOW  # the period rolled over, but its invoice is unpaid
    assert desired_server_state(result.state.phase, result.state.terminate_at, NOW) == DesiredServerState.RUNNING


def test_each_further_failed_attempt_is_told_once_and_keeps_the_grace_deadline() -> None:
    first = assess(ACTIVE, sub("past_due", latest=invoice("open", next_attempt=NOW + timedelta(days=1))), POLICY, NOW)
    later = NOW + timedelta(days=1)
    second_facts = sub("past_due", latest=invoice("open", attempts=2, next_attempt=NOW + timedelta(days=3)))
    second = assess(first.state, second_facts, POLICY, later)
    assert second.cause == C.PAYMENT_FAILED
    assert second.state.attempt_count == 2
    assert second.state.grace_until == first.state.grace_until
    assert not assess(second.state, second_facts, POLICY, later).changed


def test_a_retry_that_succeeds_recovers_without_any_suspension() -> None:
    past_due = assess(ACTIVE, sub("past_due", latest=invoice("open", next_attempt=NOW)), POLICY, NOW).state
    result = assess(past_due, sub(latest=invoice("paid", attempts=2)), POLICY, NOW)
    assert result.steps == ((C.RECOVERED, P.ACTIVE),)
    assert result.state.grace_until is None and result.state.next_payment_attempt is None


@pytest.mark.parametrize(
    "exhausted",
    [
        sub("canceled", reason="payment_failed", latest=invoice("open")),
        sub("unpaid", latest=invoice("open")),
        sub("past_due", latest=invoice("open", attempts=4, next_attempt=None)),
        sub("past_due", latest=invoice("uncollectible", attempts=4)),
    ],
    ids=["cancel", "unpaid", "left-past-due", "uncollectible"],
)
def test_retries_exhausted_lapse_the_rental_whatever_stripe_was_set_to_do(exhausted: SubscriptionFacts) -> None:
    past_due = assess(ACTIVE, sub("past_due", latest=invoice("open", next_attempt=NOW)), POLICY, NOW).state
    result = assess(past_due, exhausted, POLICY, NOW)
    assert result.cause == C.LAPSED
    assert result.state.terminate_at == NOW + POLICY.retention
    assert desired_server_state(P.LAPSED, result.state.terminate_at, NOW) == DesiredServerState.SUSPENDED


def test_paying_the_open_invoice_after_the_lapse_brings_the_server_back() -> None:
    lapsed = assess(ACTIVE, sub("unpaid", latest=invoice("open", next_attempt=None)), POLICY, NOW).state
    result = assess(lapsed, sub("active", latest=invoice("paid", attempts=4)), POLICY, NOW + timedelta(days=1))
    assert result.cause == C.RECOVERED
    assert result.state.terminate_at is None


def test_cancel_at_period_end_runs_until_the_end_and_undo_keeps_it_running() -> None:
    cancelling = assess(ACTIVE, sub(cancel_at_period_end=True), POLICY, NOW)
    assert cancelling.cause == C.CANCELLATION_SCHEDULED
    assert cancelling.state.ends_at == NOW + MONTH
    assert desired_server_state(P.CANCELLING, None, NOW) == DesiredServerState.RUNNING
    undone = assess(cancelling.state, sub(), POLICY, NOW)
    assert undone.cause == C.CANCELLATION_UNDONE
    ended = assess(cancelling.state, sub("canceled", reason="cancellation_requested"), POLICY, NOW + MONTH)
    assert ended.cause == C.ENDED
    assert ended.state.terminate_at == NOW + MONTH + POLICY.retention


def test_a_portal_cancellation_that_only_sets_cancel_at_is_a_cancellation() -> None:
    result = assess(ACTIVE, sub(cancel_at=NOW + timedelta(days=10)), POLICY, NOW)
    assert result.cause == C.CANCELLATION_SCHEDULED
    assert result.state.ends_at == NOW + timedelta(days=10)


def test_missed_events_are_caught_up_as_moves_of_the_table() -> None:
    """The first invoice.paid was lost and the renewal failed: the reconciler sees past_due."""
    facts = sub("past_due", latest=invoice("open", next_attempt=NOW + timedelta(days=1)))
    result = assess(RentalState(P.AWAITING_PAYMENT), facts, POLICY, NOW)
    assert result.steps == ((C.ACTIVATED, P.ACTIVE), (C.PAYMENT_FAILED, P.PAST_DUE))


def test_the_order_of_the_stripe_states_seen_does_not_change_the_end_result() -> None:
    """Whatever order the reads come in, the rental ends as Stripe's final state says."""
    final = sub("active", period_end=NOW + 3 * MONTH)
    reads = [sub(period_end=NOW + MONTH), sub(period_end=NOW + 2 * MONTH), final]
    ends = set()
    for order in itertools.permutations(reads):
        state = RentalState(P.AWAITING_PAYMENT)
        for facts in (*order, final):
            state = assess(state, facts, POLICY, NOW).state
        ends.add(state)
    assert len(ends) == 1
    (end,) = ends
    assert end.phase == P.ACTIVE and end.paid_through == NOW + 3 * MONTH


def test_a_refund_suspends_at_once_and_stripe_saying_active_does_not_lift_it() -> None:
    held = place_hold(ACTIVE, Hold.REFUNDED, POLICY, NOW)
    assert held.cause == C.REFUNDED and held.state.phase == P.LAPSED
    assert not place_hold(held.state, Hold.REFUNDED, POLICY, NOW).changed
    assert assess(held.state, sub(), POLICY, NOW).state.phase == P.LAPSED


def test_a_dispute_won_gives_the_server_back_and_one_lost_ends_the_rental() -> None:
    disputed = place_hold(ACTIVE, Hold.DISPUTED, POLICY, NOW)
    assert disputed.cause == C.DISPUTE_OPENED
    won = apply_dispute_outcome(disputed.state, True, POLICY, NOW)
    assert won.cause == C.DISPUTE_WON and won.state.phase == P.ACTIVE and won.state.hold is None
    assert not apply_dispute_outcome(won.state, True, POLICY, NOW).changed  # told twice: once
    lost = apply_dispute_outcome(disputed.state, False, POLICY, NOW)
    assert lost.cause == C.DISPUTE_LOST and lost.state.phase == P.ENDED


def test_a_fixed_term_runs_its_days_lapses_and_paying_again_extends_from_the_end() -> None:
    first = fixed_term_paid(RentalState(P.AWAITING_PAYMENT), term=MONTH, paid_at=NOW, policy=POLICY)
    assert first.cause == C.ACTIVATED and first.state.paid_through == NOW + MONTH
    early = fixed_term_paid(first.state, term=MONTH, paid_at=NOW + timedelta(days=10), policy=POLICY)
    assert early.cause == C.RENEWED and early.state.paid_through == NOW + 2 * MONTH
    assert not fixed_term_expired(early.state, POLICY, NOW + MONTH).changed
    lapsed = fixed_term_expired(early.state, POLICY, NOW + 2 * MONTH)
    assert lapsed.cause == C.LAPSED
    back = fixed_term_paid(lapsed.state, term=MONTH, paid_at=NOW + 2 * MONTH + timedelta(days=1), policy=POLICY)
    assert back.cause == C.RENEWED and back.state.phase == P.ACTIVE


def test_the_server_is_deleted_only_once_the_retention_is_over() -> None:
    terminate_at = NOW + POLICY.retention
    assert desired_server_state(P.LAPSED, terminate_at, NOW) == DesiredServerState.SUSPENDED
    assert desired_server_state(P.ENDED, terminate_at, terminate_at) == DesiredServerState.TERMINATED
    assert desired_server_state(P.PAST_DUE, terminate_at, terminate_at) == DesiredServerState.RUNNING


def test_path_finds_moves_only_through_the_table_and_never_guesses_money_events() -> None:
    assert path(P.CANCELLING, P.PAST_DUE) == ((C.CANCELLATION_UNDONE, P.ACTIVE), (C.PAYMENT_FAILED, P.PAST_DUE))
    assert path(P.ENDED, P.ACTIVE) == ()
    assert all(cause not in {C.DISPUTE_LOST, C.REFUNDED} for cause, _ in path(P.LAPSED, P.ENDED))


def test_an_ended_rental_is_not_moved_by_any_stripe_state() -> None:
    ended = replace(ACTIVE, phase=P.ENDED)
    assert not assess(ended, sub(), POLICY, NOW).changed


def test_a_period_rolled_over_but_not_yet_charged_is_not_a_renewal() -> None:
    """Stripe rolls the period at the renewal and charges an hour later: nothing new is paid until then."""
    rolled = replace(sub(period_end=NOW + MONTH, latest=invoice("draft")), current_period_start=NOW)
    assert not assess(ACTIVE, rolled, POLICY, NOW).changed
    charged = replace(sub(period_end=NOW + MONTH, latest=invoice("paid")), current_period_start=NOW)
    result = assess(ACTIVE, charged, POLICY, NOW)
    assert result.cause == C.RENEWED and result.state.paid_through == NOW + MONTH
    failing = replace(
        sub("past_due", period_end=NOW + MONTH, latest=invoice("open", next_attempt=NOW + timedelta(days=1))),
        current_period_start=NOW,
    )
    past_due = assess(ACTIVE, failing, POLICY, NOW)
    assert past_due.cause == C.PAYMENT_FAILED and past_due.state.paid_through == NOW
