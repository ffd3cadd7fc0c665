"""Unit tests of the projection's rules: a table of tricky histories and what the customer must see.

Each history is given as a set of events (the arrival order is irrelevant by construction, and the
property tests check that); times are seconds, and several cases give one service a skewed clock.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from status_service_support import OrderStory, at, redelivered

from spawnpoint_contracts import Event, FailureReason
from status_service.domain.projection import (
    FAILURE_MESSAGES,
    REPLAYED_MESSAGE,
    RETRYING_MESSAGE,
    Phase,
    Status,
    project,
)

pytestmark = pytest.mark.unit


@dataclass(frozen=True)
class Case:
    name: str
    history: Callable[[OrderStory], list[Event]]
    status: Status
    phase: Phase


CASES = [
    Case("just created", lambda s: [s.created()], Status.PENDING, Phase.AWAITING_PAYMENT),
    Case("bank payment started", lambda s: [s.created(), s.processing()], Status.PENDING, Phase.PAYMENT_PROCESSING),
    Case("paid", lambda s: [s.created(), s.paid()], Status.PAID, Phase.PAID),
    Case("paid after a delayed payment", lambda s: [s.created(), s.processing(), s.paid()], Status.PAID, Phase.PAID),
    Case("panel busy, retrying", lambda s: [s.created(), s.paid(), s.retry()], Status.PAID, Phase.PROVISIONING),
    Case(
        "server created, installing",
        lambda s: [s.created(), s.paid(), s.server_created()],
        Status.PAID,
        Phase.INSTALLING,
    ),
    Case(
        "installed",
        lambda s: [s.created(), s.paid(), s.server_created(), s.installed()],
        Status.CREATED,
        Phase.READY,
    ),
    Case(
        "late OrderPaid after CREATED (it arrives last; it changes nothing)",
        lambda s: [s.created(), s.server_created(), s.installed(), s.paid()],
        Status.CREATED,
        Phase.READY,
    ),
    Case(
        "ServerCreated before OrderPaid (provisioner clock 30 s behind)",
        lambda s: [s.created(), s.paid(t=40), s.server_created(t=10)],
        Status.PAID,
        Phase.INSTALLING,
    ),
    Case(
        "ServerCreated alone: payment evidence even before OrderPaid arrives",
        lambda s: [s.created(), s.server_created()],
        Status.PAID,
        Phase.INSTALLING,
    ),
    Case("expired", lambda s: [s.created(), s.expired()], Status.FAILED, Phase.EXPIRED),
    Case(
        "payment failed",
        lambda s: [s.created(), s.processing(), s.payment_failed()],
        Status.FAILED,
        Phase.PAYMENT_FAILED,
    ),
    Case(
        "expiry after payment is ignored",
        lambda s: [s.created(), s.paid(), s.expired(t=3600)],
        Status.PAID,
        Phase.PAID,
    ),
    Case(
        "expiry stamped before a payment by a skewed clock: payment still wins",
        lambda s: [s.created(), s.expired(t=50), s.paid(t=60), s.server_created(t=70)],
        Status.PAID,
        Phase.INSTALLING,
    ),
    Case(
        "payment failure after payment is ignored",
        lambda s: [s.created(), s.paid(), s.payment_failed(t=30), s.server_created(t=20), s.installed()],
        Status.CREATED,
        Phase.READY,
    ),
    Case("provisioning failed", lambda s: [s.created(), s.paid(), s.failed()], Status.FAILED, Phase.FAILED),
    Case(
        "installation failed after the server was created",
        lambda s: [s.created(), s.paid(), s.server_created(), s.failed(t=90, reason=FailureReason.INSTALL_FAILED)],
        Status.FAILED,
        Phase.FAILED,
    ),
    Case(
        "replay after failure: creating again",
        lambda s: [s.created(), s.paid(), s.failed(), s.replayed()],
        Status.PAID,
        Phase.PROVISIONING,
    ),
    Case(
        "replay after failure, server created",
        lambda s: [s.created(), s.paid(), s.failed(), s.replayed(), s.server_created(t=1001)],
        Status.PAID,
        Phase.INSTALLING,
    ),
    Case(
        "replay after failure succeeds: CREATED",
        lambda s: [s.created(), s.paid(), s.failed(), s.replayed(), s.server_created(t=1001), s.installed(t=1060)],
        Status.CREATED,
        Phase.READY,
    ),
    Case(
        "replay fails again",
        lambda s: [s.created(), s.paid(), s.failed(), s.replayed(), s.failed(t=1002)],
        Status.FAILED,
        Phase.FAILED,
    ),
    Case(
        "replay fails again, the replay stamped by a clock 10 s ahead: more failures than replays",
        lambda s: [s.created(), s.paid(), s.failed(), s.replayed(t=1010), s.failed(t=1002)],
        Status.FAILED,
        Phase.FAILED,
    ),
    Case(
        "replay arrives before the failure it repairs",
        lambda s: [s.created(), s.paid(), s.replayed(), s.failed()],
        Status.PAID,
        Phase.PROVISIONING,
    ),
    Case(
        "replay of a message dead-lettered without a failure (crash loop), then the attempt fails",
        lambda s: [s.created(), s.paid(), s.replayed(t=500), s.failed(t=510)],
        Status.FAILED,
        Phase.FAILED,
    ),
    Case(
        "two replays, the second succeeds",
        lambda s: [
            s.created(),
            s.paid(),
            s.failed(t=20),
            s.replayed(t=1000, replay_count=1),
            s.failed(t=1005),
            s.replayed(t=2000, replay_count=2),
            s.server_created(t=2001),
            s.installed(t=2060),
        ],
        Status.CREATED,
        Phase.READY,
    ),
    Case(
        "an operator replays a stale copy while the server installs: nothing changes",
        lambda s: [s.created(), s.paid(), s.server_created(), s.replayed(t=100)],
        Status.PAID,
        Phase.INSTALLING,
    ),
    Case(
        "install failed, replay adopts the server again",
        lambda s: [
            s.created(),
            s.paid(),
            s.server_created(),
            s.failed(t=90, reason=FailureReason.INSTALL_FAILED),
            s.replayed(),
            s.server_created(t=1001, adopted=True),
        ],
        Status.PAID,
        Phase.INSTALLING,
    ),
    Case(
        "install failed, replay not picked up by a new attempt yet",
        lambda s: [
            s.created(),
            s.paid(),
            s.server_created(),
            s.failed(t=90, reason=FailureReason.INSTALL_FAILED),
            s.replayed(),
        ],
        Status.PAID,
        Phase.PROVISIONING,
    ),
    Case(
        "a stale failure arriving after success changes nothing",
        lambda s: [s.created(), s.paid(), s.server_created(), s.installed(), s.failed(t=120)],
        Status.CREATED,
        Phase.READY,
    ),
    Case(
        "refund after failure",
        lambda s: [s.created(), s.paid(), s.failed(), s.refunded()],
        Status.FAILED,
        Phase.REFUNDED,
    ),
    Case(
        "refund after ready: the money went back",
        lambda s: [s.created(), s.paid(), s.server_created(), s.installed(), s.refunded(t=5000, reason="requested")],
        Status.FAILED,
        Phase.REFUNDED,
    ),
    Case(
        "a duplicate payment refunded while the server installs: the order goes on",
        lambda s: [s.created(), s.paid(), s.server_created(), s.refunded(t=30, reason="duplicate_payment")],
        Status.PAID,
        Phase.INSTALLING,
    ),
    Case(
        "late payment for an expired order refunded as a duplicate",
        lambda s: [s.created(), s.expired(), s.refunded(t=4000, reason="duplicate_payment")],
        Status.FAILED,
        Phase.REFUNDED,
    ),
    Case(
        "paid after expiry and refunded",
        lambda s: [s.created(), s.expired(), s.refunded(t=4000, reason="paid_after_expiry")],
        Status.FAILED,
        Phase.REFUNDED,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_history_gives_status_and_phase(case: Case) -> None:
    events = case.history(OrderStory())
    model = project(events)
    assert model is not None
    assert (model.status, model.phase) == (case.status, case.phase)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_every_arrival_order_with_duplicates_gives_the_same_model(case: Case) -> None:
    events = case.history(OrderStory())
    expected = project(events)
    for order in itertools.islice(itertools.permutations(events), 200):
        assert project([*order, *(redelivered(e) for e in order[:2])]) == expected


def test_no_events_no_read_model() -> None:
    assert project([]) is None


def test_ready_shows_the_connect_path_and_the_server_identifier() -> None:
    s = OrderStory()
    model = project([s.created(), s.paid(), s.server_created(identifier="srv12345"), s.installed(identifier="")])
    assert model is not None
    assert model.server_id == "srv12345"  # ServerInstalled without an identifier keeps ServerCreated's
    assert model.connect_path == "/gameserver/srv12345"


def test_connect_path_only_when_ready() -> None:
    s = OrderStory()
    installing = project([s.created(), s.paid(), s.server_created(identifier="srv12345")])
    assert installing is not None
    assert installing.server_id == "srv12345" and installing.connect_path is None


def test_the_owner_comes_from_order_created_or_order_paid() -> None:
    s = OrderStory(user_id="bob")
    only_paid = project([s.paid()])
    without_owner = project([s.server_created()])
    assert only_paid is not None and only_paid.user_id == "bob"
    assert without_owner is not None and without_owner.user_id is None


def test_customer_messages_carry_no_internal_details() -> None:
    s = OrderStory()
    failure = s.failed(message="the panel refused our API key: ptla_abcdef (401 AuthenticationException)")
    model = project([s.created(), s.paid(), failure])
    assert model is not None
    assert model.message == FAILURE_MESSAGES[FailureReason.NO_CAPACITY]
    for internal in ("panel", "ptla_", "401", "no_capacity", "Exception"):
        assert internal not in model.message


def test_failure_message_follows_the_reason_of_the_current_failure() -> None:
    s = OrderStory()
    model = project([s.created(), s.paid(), s.server_created(), s.failed(t=90, reason=FailureReason.INSTALL_TIMEOUT)])
    assert model is not None
    assert model.message == FAILURE_MESSAGES[FailureReason.INSTALL_TIMEOUT]
    other = project([s.created(), s.paid(), s.failed(reason=FailureReason.PANEL_AUTH)])
    assert other is not None and "could not create your server" in other.message


def test_retrying_and_replayed_messages() -> None:
    s = OrderStory()
    retrying = project([s.created(), s.paid(), s.retry()])
    replayed = project([s.created(), s.paid(), s.failed(), s.replayed()])
    assert retrying is not None and retrying.message == RETRYING_MESSAGE
    assert replayed is not None and replayed.message == REPLAYED_MESSAGE


def test_updated_at_is_when_the_current_phase_began() -> None:
    s = OrderStory()
    created, paid, server = s.created(t=0), s.paid(t=10), s.server_created(t=15)
    model = project([created, paid, server, s.expired(t=3600)])  # the ignored expiry does not count
    assert model is not None
    assert model.updated_at == at(15)
    assert model.decided_by == server.event_id


def test_updated_at_never_precedes_the_cause_under_clock_skew() -> None:
    s = OrderStory()
    model = project([s.created(), s.paid(t=40), s.server_created(t=10)])
    assert model is not None
    assert model.updated_at == at(40)  # the server cannot have been created before it was paid for


def test_duplicates_are_one_event() -> None:
    s = OrderStory()
    created, paid = s.created(), s.paid()
    model = project([created, paid, redelivered(paid), redelivered(created)])
    assert model is not None
    assert model.events_applied == 2
