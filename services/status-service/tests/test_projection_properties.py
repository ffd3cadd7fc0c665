"""Property-based tests of the projection over generated histories of one order.

The generator follows what the services can actually emit (a payment path; then provisioning attempts
with retries, failures and operator replays; maybe a refund), and then does what the world does to
it: every producer's clock is skewed by up to ten seconds, and events arrive in any order, some of them
several times. The properties:

- the final state is what the generator made happen (an oracle independent of the projection's rules);
- every arrival order, with duplicates inserted, yields the same read model as the canonical order;
- as events arrive one by one the phase never moves backwards, except that after an operator's replay
  a failed (or, while events still arrive out of order, an installing) order may show that its server
  is being created again; CREATED is only ever followed by CREATED or a refund;
- the customer's timeline is the same whatever the arrival order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from status_service_support import OrderStory, redelivered

from spawnpoint_contracts import Event, FailureReason, ProvisioningReplayed
from status_service.domain.ordering import canonical
from status_service.domain.projection import PROGRESS, Phase, Status, project
from status_service.domain.timeline import customer_timeline

pytestmark = pytest.mark.unit

# A loaded 2-core CI machine must not turn slowness into failures: no deadline, bounded examples.
PROPERTY_SETTINGS = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)

PRODUCERS = ("order-service", "payment-service", "provisioner")
FAILURES = (FailureReason.NO_CAPACITY, FailureReason.PANEL_AUTH, FailureReason.INSTALL_FAILED)
REFUND_REASONS = ("provisioning_failed", "duplicate_payment", "paid_after_expiry", "requested")


@dataclass(frozen=True)
class Scenario:
    events: list[Event]
    expected: Phase
    """What the customer must see in the end, decided by the generator from what it made happen."""


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    """One order's events as the services would emit them, with skewed clocks, and the right answer."""
    story = OrderStory()
    skew = {p: draw(st.floats(min_value=-10, max_value=10)) for p in PRODUCERS}
    events: list[Event] = [story.created(t=0)]
    now = 1.0

    def tick(seconds: float) -> float:
        nonlocal now
        now += seconds
        return now

    payment = draw(st.sampled_from(["none", "processing", "paid", "processing_paid", "expired", "payment_failed"]))
    expected = {
        "none": Phase.AWAITING_PAYMENT,
        "processing": Phase.PAYMENT_PROCESSING,
        "expired": Phase.EXPIRED,
        "payment_failed": Phase.PAYMENT_FAILED,
    }.get(payment, Phase.PAID)
    if "processing" in payment:
        events.append(story.processing(t=tick(2)))
    if payment == "expired":
        events.append(story.expired(t=tick(3600)))
    if payment == "payment_failed":
        events.append(story.payment_failed(t=tick(60)))
    paid = "paid" in payment
    if paid:
        events.append(story.paid(t=tick(5)))
        replays = draw(st.integers(min_value=0, max_value=3))
        for attempt in range(replays + 1):
            if attempt:
                gap = draw(st.floats(min_value=0.05, max_value=600))
                events.append(story.replayed(t=tick(gap), replay_count=attempt))
                expected = Phase.PROVISIONING
            retries = draw(st.integers(min_value=0, max_value=2))
            for n in range(retries):
                events.append(story.retry(t=tick(0.5), attempt=n + 1))
                expected = Phase.PROVISIONING
            outcome = draw(st.sampled_from(["failed", "created", "installed", "install_failed", "dead_lettered"]))
            if outcome == "failed":
                events.append(story.failed(t=tick(1), reason=draw(st.sampled_from(FAILURES))))
                expected = Phase.FAILED
            elif outcome in ("created", "installed", "install_failed"):
                events.append(story.server_created(t=tick(1)))
                expected = Phase.INSTALLING
                if outcome == "installed":
                    events.append(story.installed(t=tick(30)))
                    expected = Phase.READY
                elif outcome == "install_failed":
                    events.append(story.failed(t=tick(30), reason=FailureReason.INSTALL_FAILED))
                    expected = Phase.FAILED
            if outcome in ("created", "installed"):
                if draw(st.booleans()):  # an operator replays a stale dead-letter copy: noted, nothing else
                    gap = draw(st.floats(min_value=0.05, max_value=60))
                    events.append(story.replayed(t=tick(gap), replay_count=attempt + 1))
                break  # nothing is worked on again once a server exists and is installing or installed
            # "dead_lettered": the attempt crashed until the broker dead-lettered it, without an event
    if draw(st.booleans()) and (paid or payment == "expired"):
        reason = draw(st.sampled_from(REFUND_REASONS))
        events.append(story.refunded(t=tick(100), reason=reason))
        if not reason.startswith("duplicate") or payment == "expired":
            expected = Phase.REFUNDED
    return Scenario([_skewed(e, skew) for e in events], expected)


def histories() -> st.SearchStrategy[list[Event]]:
    """One order's events (see ``scenarios``)."""
    return scenarios().map(lambda scenario: scenario.events)


def _skewed(event: Event, skew: dict[str, float]) -> Event:
    return event.model_copy(update={"occurred_at": event.occurred_at + timedelta(seconds=skew[event.producer])})


@st.composite
def arrivals(draw: st.DrawFn) -> tuple[list[Event], list[Event]]:
    """A history, and one way it may arrive: any order, with some events delivered again."""
    events = draw(histories())
    order = draw(st.permutations(events))
    duplicates = draw(st.lists(st.sampled_from(events), max_size=len(events)))
    arrival = list(order)
    for duplicate in duplicates:
        arrival.insert(draw(st.integers(min_value=0, max_value=len(arrival))), redelivered(duplicate))
    return events, arrival


@PROPERTY_SETTINGS
@given(scenarios())
def test_the_final_state_is_what_happened(scenario: Scenario) -> None:
    model = project(scenario.events)
    assert model is not None
    assert model.phase == scenario.expected


@PROPERTY_SETTINGS
@given(arrivals())
def test_any_arrival_order_with_duplicates_gives_the_canonical_read_model(
    case: tuple[list[Event], list[Event]],
) -> None:
    events, arrival = case
    assert project(arrival) == project(canonical(events))


@PROPERTY_SETTINGS
@given(arrivals())
def test_the_phase_never_moves_backwards_except_through_a_replay(case: tuple[list[Event], list[Event]]) -> None:
    _, arrival = case
    previous: Phase | None = None
    seen: list[Event] = []
    for event in arrival:
        seen.append(event)
        model = project(seen)
        assert model is not None
        if previous is not None and PROGRESS[model.phase] < PROGRESS[previous]:
            # Only an operator's replay moves an order back: to creating the server again.
            assert any(isinstance(e, ProvisioningReplayed) for e in seen), (previous, model.phase, event.event_type)
            assert previous in (Phase.FAILED, Phase.INSTALLING, Phase.PROVISIONING), (previous, model.phase)
            assert model.phase in (Phase.PROVISIONING, Phase.INSTALLING), (previous, model.phase)
        previous = model.phase


@PROPERTY_SETTINGS
@given(arrivals())
def test_created_is_never_undone_but_by_a_refund(case: tuple[list[Event], list[Event]]) -> None:
    _, arrival = case
    created = False
    for i in range(1, len(arrival) + 1):
        model = project(arrival[:i])
        assert model is not None
        if created:
            assert model.phase in (Phase.READY, Phase.REFUNDED)
        created = created or model.status == Status.CREATED


@PROPERTY_SETTINGS
@given(arrivals())
def test_the_timeline_does_not_depend_on_arrival_order(case: tuple[list[Event], list[Event]]) -> None:
    events, arrival = case
    timeline = customer_timeline(arrival)
    assert timeline == customer_timeline(events)
    assert [e.at for e in timeline] == sorted(e.at for e in timeline)
