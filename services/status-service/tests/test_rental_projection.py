"""Unit tests of the rental in the read model: each cause in the customer's words, the highest version
winning whatever the arrival order, duplicates, and what the panel confirmed against the rental's phase.

Times: the order is placed on 1 Nov 2026 at noon; a rental version v is stamped v days later, the panel's
outcome for it a minute after that (``status_service_support``).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from status_service_support import OrderStory, at, on, redelivered

from spawnpoint_contracts import (
    DesiredServerState,
    Event,
    RentalCause,
    RentalChanged,
    RentalPhase,
    ServerAction,
)
from status_service.domain.ordering import canonical, place
from status_service.domain.projection import Phase, Status, project
from status_service.domain.rental import CustomerPhase, ServerState, customer_phase, day
from status_service.domain.timeline import customer_timeline, operator_summary

pytestmark = pytest.mark.unit

C, P = RentalCause, RentalPhase
DEC9 = on(12, 9)


def installed(s: OrderStory) -> list[Event]:
    """An order whose server the panel confirmed installed (``server_state`` may say running)."""
    return [s.created(), s.paid(), s.server_created(), s.installed()]


@dataclass(frozen=True)
class Case:
    name: str
    rental: Callable[[OrderStory], list[Event]]
    phase: CustomerPhase
    message: str


CASES = [
    Case(
        "activated",
        lambda s: [s.rental(1, P.ACTIVE, C.ACTIVATED, paid_through=on(12, 1), renews_at=on(12, 1))],
        CustomerPhase.ACTIVE,
        "Renews on 1 Dec",
    ),
    Case(
        "renewed",
        lambda s: [s.rental(2, P.ACTIVE, C.RENEWED, paid_through=on(1, 1, 2027), renews_at=on(1, 1, 2027))],
        CustomerPhase.ACTIVE,
        "Renews on 1 Jan",
    ),
    Case(
        "payment_failed",
        lambda s: [s.rental(2, P.PAST_DUE, C.PAYMENT_FAILED, next_payment_attempt=on(12, 3), grace_until=on(12, 16))],
        CustomerPhase.PAST_DUE,
        "Payment failed: we will try again on 3 Dec; your server keeps running until 16 Dec",
    ),
    Case(
        "payment_action_required",
        lambda s: [s.rental(2, P.PAST_DUE, C.PAYMENT_ACTION_REQUIRED, grace_until=on(12, 16))],
        CustomerPhase.PAST_DUE,
        "Payment needs your confirmation: pay the open invoice; your server keeps running until 16 Dec",
    ),
    Case(
        "recovered",
        lambda s: [s.rental(3, P.ACTIVE, C.RECOVERED, renews_at=on(1, 1, 2027))],
        CustomerPhase.ACTIVE,
        "Payment received. Renews on 1 Jan",
    ),
    Case(
        "cancellation_scheduled",
        lambda s: [s.rental(2, P.CANCELLING, C.CANCELLATION_SCHEDULED, ends_at=on(1, 1, 2027))],
        CustomerPhase.CANCELLING,
        "Cancelled: runs until 1 Jan",
    ),
    Case(
        "cancellation_undone",
        lambda s: [s.rental(3, P.ACTIVE, C.CANCELLATION_UNDONE, renews_at=on(1, 1, 2027))],
        CustomerPhase.ACTIVE,
        "Cancellation undone. Renews on 1 Jan",
    ),
    Case(
        "lapsed",
        lambda s: [s.rental(3, P.LAPSED, C.LAPSED, terminate_at=DEC9)],
        CustomerPhase.SUSPENDED,
        "Suspended: the payment did not come through. Pay the open invoice to get it back; files are kept until 9 Dec",
    ),
    Case(
        "refunded",
        lambda s: [s.rental(2, P.LAPSED, C.REFUNDED, terminate_at=DEC9, amount=500, currency="eur")],
        CustomerPhase.SUSPENDED,
        "Suspended: the payment was refunded; files are kept until 9 Dec",
    ),
    Case(
        "dispute_opened",
        lambda s: [s.rental(2, P.LAPSED, C.DISPUTE_OPENED, terminate_at=DEC9, detail={"dispute": "dp_1"})],
        CustomerPhase.SUSPENDED,
        "Suspended while the payment is disputed with your bank; files are kept until 9 Dec",
    ),
    Case(
        "dispute_won",
        lambda s: [s.rental(3, P.ACTIVE, C.DISPUTE_WON, renews_at=on(12, 1))],
        CustomerPhase.ACTIVE,
        "Dispute resolved. Renews on 1 Dec",
    ),
    Case(
        "dispute_lost",
        lambda s: [s.rental(3, P.ENDED, C.DISPUTE_LOST, terminate_at=DEC9)],
        CustomerPhase.ENDED,
        "Ended: the bank returned the disputed payment; files are kept until 9 Dec",
    ),
    Case(
        "plan_changed",
        lambda s: [s.rental(2, P.ACTIVE, C.PLAN_CHANGED, renews_at=on(12, 1), plan_id="pro")],
        CustomerPhase.ACTIVE,
        "Plan changed. Renews on 1 Dec",
    ),
    Case(
        "termination_warning",
        lambda s: [
            s.rental(3, P.LAPSED, C.LAPSED, terminate_at=DEC9),
            s.rental(4, P.LAPSED, C.TERMINATION_WARNING, terminate_at=DEC9),
        ],
        CustomerPhase.SUSPENDED,
        "Suspended: the payment did not come through. Pay the open invoice to get it back. "
        "Your server and its files will be deleted on 9 Dec",
    ),
    Case(
        "ended",
        lambda s: [s.rental(3, P.ENDED, C.ENDED, terminate_at=DEC9)],
        CustomerPhase.ENDED,
        "Ended: files are kept until 9 Dec",
    ),
    Case(
        "ended, nothing kept",
        lambda s: [s.rental(3, P.ENDED, C.ENDED)],
        CustomerPhase.ENDED,
        "Ended",
    ),
    Case(
        "fixed term paid",
        lambda s: [s.rental(1, P.ACTIVE, C.ACTIVATED, kind="fixed_term", paid_through=on(12, 1))],
        CustomerPhase.ACTIVE,
        "Paid until 1 Dec",
    ),
    Case(
        "fixed term over",
        lambda s: [s.rental(31, P.LAPSED, C.LAPSED, kind="fixed_term", paid_through=on(12, 1), terminate_at=DEC9)],
        CustomerPhase.SUSPENDED,
        "Suspended: the paid time is over. Pay again to get it back; files are kept until 9 Dec",
    ),
    Case(
        "a yearly renewal far away names the year",
        lambda s: [s.rental(2, P.ACTIVE, C.RENEWED, renews_at=on(11, 1, 2027))],
        CustomerPhase.ACTIVE,
        "Renews on 1 Nov 2027",
    ),
]


def test_every_cause_has_a_case() -> None:
    covered = {e.payload.cause for case in CASES for e in case.rental(OrderStory()) if isinstance(e, RentalChanged)}
    assert covered == set(RentalCause)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_each_cause_in_the_customers_words(case: Case) -> None:
    s = OrderStory()
    model = project([*installed(s), *case.rental(s)])
    assert model is not None and model.rental is not None
    assert (model.rental.phase, model.rental.message) == (case.phase, case.message)
    assert model.rental.server_state == ServerState.RUNNING  # installed; the panel has not been changed
    for internal in ("sub_", "dp_", "lapsed", "_", "panel"):
        assert internal not in model.rental.message


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_rental_events_never_change_what_the_frontends_switch_on(case: Case) -> None:
    s = OrderStory()
    base = installed(s)
    without, with_rental = project(base), project([*base, *case.rental(s)])
    assert without is not None and with_rental is not None
    assert without.rental is None
    assert (without.status, without.phase, without.message, without.updated_at, without.connect_path) == (
        with_rental.status,
        with_rental.phase,
        with_rental.message,
        with_rental.updated_at,
        with_rental.connect_path,
    )


def test_the_public_object() -> None:
    s = OrderStory()
    model = project(
        [
            *installed(s),
            s.rental(2, P.PAST_DUE, C.PAYMENT_FAILED, paid_through=on(12, 1), grace_until=on(12, 16)),
        ]
    )
    assert model is not None and model.rental is not None
    assert model.rental.public() == {
        "phase": "past_due",
        "kind": "subscription",
        "plan_id": "starter",
        "period_id": "monthly",
        "paid_through": "2026-12-01T00:00:00Z",
        "renews_at": None,
        "ends_at": None,
        "next_payment_attempt": None,
        "grace_until": "2026-12-16T00:00:00Z",
        "terminate_at": None,
        "server_state": "running",
        "message": "Payment failed: pay the open invoice; your server keeps running until 16 Dec",
    }
    json.dumps(model.rental.public())  # JSON-ready as it is stored and announced


def test_no_rental_changed_no_rental() -> None:
    s = OrderStory()
    model = project([*installed(s), s.suspended(3), s.desired(3, DesiredServerState.SUSPENDED, C.LAPSED)])
    assert model is not None and model.rental is None


# the highest version wins --------------------------------------------------------------------------


def _lifecycle(s: OrderStory) -> list[Event]:
    """Paid, failed, lapsed (the panel suspends), paid again (the panel restores)."""
    return [
        s.rental(1, P.ACTIVE, C.ACTIVATED, renews_at=on(12, 1)),
        s.rental(2, P.PAST_DUE, C.PAYMENT_FAILED, next_payment_attempt=on(12, 3), grace_until=on(12, 16)),
        s.rental(3, P.LAPSED, C.LAPSED, terminate_at=DEC9),
        s.suspended(3),
        s.rental(4, P.ACTIVE, C.RECOVERED, renews_at=on(1, 1, 2027)),
        s.unsuspended(4),
    ]


def test_the_highest_version_wins_under_every_arrival_order_and_never_goes_back() -> None:
    s = OrderStory()
    base = installed(s)
    history = _lifecycle(s)
    final = project([*base, *history])
    assert final is not None and final.rental is not None
    assert (final.rental.version, final.rental.phase, final.rental.server_state) == (
        4,
        CustomerPhase.ACTIVE,
        ServerState.RUNNING,
    )
    assert final.rental.message == "Payment received. Renews on 1 Jan"
    for order in itertools.permutations(history):
        seen: list[Event] = list(base)
        for event in order:
            seen.append(event)
            model = project(seen)
            assert model is not None
            versions = [e.payload.version for e in seen if isinstance(e, RentalChanged)]
            if versions:
                assert model.rental is not None and model.rental.version == max(versions)
        assert project([*seen, *(redelivered(e) for e in order[:3])]) == final


def test_a_stale_rental_arriving_last_changes_nothing() -> None:
    s = OrderStory()
    newest = s.rental(3, P.LAPSED, C.LAPSED, terminate_at=DEC9)
    older = s.rental(2, P.PAST_DUE, C.PAYMENT_FAILED, grace_until=on(12, 16))
    first = project([*installed(s), newest])
    late = project([*installed(s), newest, older])
    assert first is not None and late is not None and first.rental is not None
    assert first.rental == late.rental
    assert first.rental.public() == late.rental.public()


def test_duplicates_are_one_event() -> None:
    s = OrderStory()
    events = [*installed(s), *_lifecycle(s)]
    model = project(events)
    again = project([*events, *(redelivered(e) for e in events)])
    assert model == again and model is not None and model.events_applied == len(events)


def test_a_version_stamped_earlier_by_a_skewed_clock_still_comes_after_the_one_before_it() -> None:
    s = OrderStory()
    v1 = s.rental(1, P.ACTIVE, C.ACTIVATED, t=1000, renews_at=on(12, 1))
    v2 = s.rental(2, P.PAST_DUE, C.PAYMENT_FAILED, t=900, grace_until=on(12, 16))
    suspended = s.suspended(2, t=800)  # the provisioner's clock behind both
    placed = place([suspended, v2, v1, *installed(s)])
    order = [p.event for p in placed]
    assert order.index(v1) < order.index(v2) < order.index(suspended)
    assert placed[order.index(suspended)].at == at(1000)  # never before the decision it carries out
    model = project(order)
    assert model is not None and model.rental is not None and model.rental.version == 2


# what the panel confirmed against the rental's phase ------------------------------------------------


def _rental(events: list[Event]) -> tuple[CustomerPhase, ServerState | None, str]:
    model = project(events)
    assert model is not None and model.rental is not None
    return model.rental.phase, model.rental.server_state, model.rental.message


def test_never_running_before_the_panel_confirmed_an_installed_server() -> None:
    s = OrderStory()
    active = s.rental(1, P.ACTIVE, C.ACTIVATED, renews_at=on(12, 1))
    assert _rental([s.created(), s.paid(), active])[1] is None
    assert _rental([s.created(), s.paid(), s.server_created(), active])[1] is None
    assert _rental([*installed(s), active])[1] == ServerState.RUNNING


def test_lapsed_is_suspended_even_while_the_panel_still_runs_the_server() -> None:
    s = OrderStory()
    lapsed = s.rental(3, P.LAPSED, C.LAPSED, terminate_at=DEC9)
    phase, server, _ = _rental([*installed(s), lapsed])
    assert (phase, server) == (CustomerPhase.SUSPENDED, ServerState.RUNNING)
    phase, server, _ = _rental([*installed(s), lapsed, s.suspended(3)])
    assert (phase, server) == (CustomerPhase.SUSPENDED, ServerState.SUSPENDED)


def test_paid_again_but_the_panel_still_suspended_shows_suspended_until_it_is_restored() -> None:
    s = OrderStory()
    lapsed, recovered = s.rental(3, P.LAPSED, C.LAPSED, terminate_at=DEC9), s.rental(4, P.ACTIVE, C.RECOVERED)
    base = [*installed(s), lapsed, s.suspended(3), recovered]
    assert _rental(base) == (
        CustomerPhase.SUSPENDED,
        ServerState.SUSPENDED,
        "Suspended: your server is being restored",
    )
    failed = s.action_failed(ServerAction.UNSUSPEND, 4)
    assert _rental([*base, failed])[2] == "Suspended: we could not restore your server yet. Our team has been notified"
    assert _rental([*base, failed, s.unsuspended(4, t=86400 * 5)])[:2] == (CustomerPhase.ACTIVE, ServerState.RUNNING)


def test_the_panels_newest_decision_wins_whatever_arrives_last() -> None:
    s = OrderStory()
    rentals = [s.rental(3, P.LAPSED, C.LAPSED, terminate_at=DEC9), s.rental(4, P.ACTIVE, C.RECOVERED)]
    for order in itertools.permutations([s.suspended(3), s.unsuspended(4), s.resized(4)]):
        assert _rental([*installed(s), *rentals, *order])[:2] == (CustomerPhase.ACTIVE, ServerState.RUNNING)


def test_a_suspension_for_a_decision_not_seen_yet_is_shown() -> None:
    s = OrderStory()
    events = [*installed(s), s.rental(2, P.ACTIVE, C.RENEWED, renews_at=on(12, 1)), s.suspended(3)]
    assert _rental(events) == (CustomerPhase.SUSPENDED, ServerState.SUSPENDED, "Suspended: your files are kept")


def test_terminated_is_final() -> None:
    s = OrderStory()
    ended = s.rental(5, P.ENDED, C.ENDED, terminate_at=DEC9)
    for late in ([], [s.unsuspended(9)], [s.suspended(6)]):
        assert _rental([*installed(s), ended, s.suspended(5), s.terminated(6), *late]) == (
            CustomerPhase.ENDED,
            ServerState.TERMINATED,
            "Ended: your server and its files were deleted",
        )


def test_a_resize_changes_no_state_and_a_failed_action_changes_nothing_on_the_panel() -> None:
    s = OrderStory()
    changed = s.rental(2, P.ACTIVE, C.PLAN_CHANGED, renews_at=on(12, 1), plan_id="pro")
    assert _rental([*installed(s), changed, s.resized(2)])[:2] == (CustomerPhase.ACTIVE, ServerState.RUNNING)
    failed = s.action_failed(ServerAction.RESIZE, 2)
    assert _rental([*installed(s), changed, failed]) == (
        CustomerPhase.ACTIVE,
        ServerState.RUNNING,
        "Plan changed. Renews on 1 Dec",
    )


@pytest.mark.parametrize(
    ("phase", "server", "expected"),
    [
        (P.AWAITING_PAYMENT, None, CustomerPhase.AWAITING_PAYMENT),
        (P.ACTIVE, ServerState.RUNNING, CustomerPhase.ACTIVE),
        (P.ACTIVE, ServerState.SUSPENDED, CustomerPhase.SUSPENDED),
        (P.PAST_DUE, None, CustomerPhase.PAST_DUE),
        (P.CANCELLING, ServerState.RUNNING, CustomerPhase.CANCELLING),
        (P.LAPSED, ServerState.RUNNING, CustomerPhase.SUSPENDED),
        (P.LAPSED, ServerState.TERMINATED, CustomerPhase.ENDED),
        (P.ENDED, ServerState.SUSPENDED, CustomerPhase.ENDED),
    ],
)
def test_customer_phase(phase: RentalPhase, server: ServerState | None, expected: CustomerPhase) -> None:
    assert customer_phase(phase, server) == expected


def test_dates() -> None:
    assert day(on(12, 3), at(0)) == "3 Dec"
    assert day(on(1, 1, 2027), at(0)) == "1 Jan"
    assert day(on(6, 1, 2027), at(0)) == "1 Jun 2027"


# the timelines --------------------------------------------------------------------------------------


def test_one_customer_entry_per_rental_change_and_panel_outcome() -> None:
    s = OrderStory()
    failure = s.action_failed(ServerAction.UNSUSPEND, 4, message="DaemonConnectionException on wings-03")
    events = [
        *installed(s),
        *_lifecycle(s)[:4],
        s.desired(3, DesiredServerState.SUSPENDED, C.LAPSED),
        s.rental(4, P.ACTIVE, C.RECOVERED, renews_at=on(1, 1, 2027), amount=500, currency="eur"),
        s.desired(4, DesiredServerState.RUNNING, C.RECOVERED),
        failure,
        s.unsuspended(4, t=86400 * 4 + 120),
        s.rental(5, P.ACTIVE, C.PLAN_CHANGED, renews_at=on(1, 1, 2027), plan_id="pro"),
        s.resized(5),
        s.rental(6, P.ENDED, C.ENDED, terminate_at=DEC9),
        s.suspended(6),
        s.terminated(7),
    ]
    timeline = customer_timeline(reversed(events))
    assert [e.code for e in timeline][4:] == [
        "rental_activated",
        "rental_payment_failed",
        "rental_lapsed",
        "server_suspended",
        "rental_recovered",
        "server_action_failed",
        "server_unsuspended",
        "rental_plan_changed",
        "server_resized",
        "rental_ended",
        "server_suspended",
        "server_terminated",
    ]
    by_code = {e.code: e for e in timeline}
    assert by_code["rental_payment_failed"].detail == (
        "The payment did not go through: we will try again on 3 Dec; your server keeps running until 16 Dec"
    )
    assert by_code["rental_recovered"].detail == "5.00 EUR paid; renews on 1 Jan"
    assert by_code["server_action_failed"].detail == "We could not restore your server yet. Our team has been notified"
    text = json.dumps([[e.title, e.detail] for e in timeline])
    for internal in ("Daemon", "wings", "unsuspend_failed", "sub_test", "desired", "42"):
        assert internal not in text
    assert customer_timeline(events) == timeline


def test_two_rental_events_of_one_version_are_one_entry() -> None:
    s = OrderStory()
    one = s.rental(1, P.ACTIVE, C.ACTIVATED, renews_at=on(12, 1))
    twin = s.rental(1, P.ACTIVE, C.ACTIVATED, renews_at=on(12, 1))
    codes = [e.code for e in customer_timeline([*installed(s), one, twin, redelivered(one)])]
    assert codes.count("rental_activated") == 1


def test_operator_summaries_of_the_seven_keep_every_id_and_reason() -> None:
    s = OrderStory()
    rental = operator_summary(
        s.rental(2, P.LAPSED, C.REFUNDED, invoice_id="in_7", amount=500, currency="eur", detail={"refund": "re_9"})
    )
    for fact in ("v2", "lapsed", "refunded", "sub_test_1", "in_7", "5.00 EUR", "refund=re_9"):
        assert fact in rental
    assert "suspended (lapsed)" in operator_summary(s.desired(3, DesiredServerState.SUSPENDED, C.LAPSED))
    assert "server 42 suspended (desired v3" in operator_summary(s.suspended(3))
    assert "server 42 unsuspended (desired v4" in operator_summary(s.unsuspended(4))
    assert "resized to plan pro" in operator_summary(s.resized(4))
    assert "terminated (desired v5" in operator_summary(s.terminated(5))
    failed = operator_summary(s.action_failed(ServerAction.TERMINATE, 5))
    for fact in ("terminate failed", "terminate_failed", "DaemonConnectionException", "node=wings-03", "replayable"):
        assert fact in failed


# generated rental histories ---------------------------------------------------------------------------

WALK: dict[RentalPhase, list[tuple[RentalCause, RentalPhase]]] = {
    P.ACTIVE: [
        (C.RENEWED, P.ACTIVE),
        (C.PAYMENT_FAILED, P.PAST_DUE),
        (C.CANCELLATION_SCHEDULED, P.CANCELLING),
        (C.REFUNDED, P.LAPSED),
        (C.PLAN_CHANGED, P.ACTIVE),
    ],
    P.PAST_DUE: [(C.PAYMENT_FAILED, P.PAST_DUE), (C.RECOVERED, P.ACTIVE), (C.LAPSED, P.LAPSED)],
    P.CANCELLING: [(C.CANCELLATION_UNDONE, P.ACTIVE), (C.ENDED, P.ENDED)],
    P.LAPSED: [(C.RECOVERED, P.ACTIVE), (C.TERMINATION_WARNING, P.LAPSED), (C.ENDED, P.ENDED)],
    P.ENDED: [(C.TERMINATION_WARNING, P.ENDED)],
}
RUNS = {P.ACTIVE, P.PAST_DUE, P.CANCELLING}


@st.composite
def rental_arrivals(draw: st.DrawFn) -> tuple[list[Event], list[Event]]:
    """A rental's events as payment-service and the provisioner emit them (the panel follows each change
    of the desired state), and one way they may arrive: any order, some of them twice."""
    s = OrderStory()
    events: list[Event] = installed(s)
    phase, version, running = P.ACTIVE, 1, True
    events.append(s.rental(1, P.ACTIVE, C.ACTIVATED, renews_at=on(12, 1)))
    for _ in range(draw(st.integers(min_value=0, max_value=6))):
        cause, phase = draw(st.sampled_from(WALK[phase]))
        version += 1
        events.append(s.rental(version, phase, cause, terminate_at=DEC9 if phase not in RUNS else None))
        if (phase in RUNS) != running:
            running = phase in RUNS
            events.append(s.unsuspended(version) if running else s.suspended(version))
    arrival = draw(st.permutations(events))
    arrival += [redelivered(e) for e in draw(st.lists(st.sampled_from(events), max_size=4))]
    return events, draw(st.permutations(arrival))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rental_arrivals())
def test_generated_rentals_any_arrival_order_gives_the_newest_rental(case: tuple[list[Event], list[Event]]) -> None:
    events, arrival = case
    model = project(arrival)
    assert model is not None and model.rental is not None
    assert model == project(canonical(events))
    newest = max((e for e in events if isinstance(e, RentalChanged)), key=lambda e: e.payload.version)
    assert model.rental.version == newest.payload.version
    assert model.rental == replace(model.rental, phase=customer_phase(newest.payload.phase, model.rental.server_state))
    assert customer_timeline(arrival) == customer_timeline(events)


def test_a_rental_that_overtakes_order_paid_shows_the_order_paid_not_waiting_for_payment() -> None:
    """payment-service commits RentalChanged(activated) with OrderPaid; the consumer may see it first."""
    s = OrderStory()
    model = project([s.created(), s.rental(1, RentalPhase.ACTIVE, RentalCause.ACTIVATED)])
    assert model is not None and model.status == Status.PAID and model.phase == Phase.PAID
    assert model.rental is not None and model.rental.phase == "active"
