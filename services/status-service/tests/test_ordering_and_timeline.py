"""Unit tests of the canonical order (causal first, clocks second) and of the two timelines."""

from __future__ import annotations

import itertools
import json
import uuid

import pytest
from status_service_support import OrderStory, at, redelivered

from spawnpoint_contracts import FailureReason
from status_service.domain.ordering import canonical, place
from status_service.domain.timeline import customer_timeline, money, operator_summary

pytestmark = pytest.mark.unit


def test_clock_order_when_nothing_else_is_known() -> None:
    s = OrderStory()
    created, processing, paid = s.created(t=0), s.processing(t=5), s.paid(t=10)
    assert canonical([paid, created, processing]) == [created, processing, paid]


def test_a_cause_comes_first_even_when_its_clock_is_ahead() -> None:
    s = OrderStory()
    paid = s.paid(t=40)  # payment-service's clock 30 s ahead of the provisioner's
    server = s.server_created(t=10)
    installed = s.installed(t=20)
    placed = place([installed, server, paid, s.created(t=0)])
    assert [p.event for p in placed][1:] == [paid, server, installed]
    assert [p.at for p in placed][1:] == [at(40), at(40), at(40)]  # never before the cause


def test_order_created_comes_first_and_installed_last() -> None:
    s = OrderStory()
    created = s.created(t=100)  # order-service's clock far ahead
    paid, failure, replay = s.paid(t=10), s.failed(t=20), s.replayed(t=30)
    installed = s.installed(t=25)  # stamped before the replay by a skewed clock
    ordered = canonical([installed, replay, failure, paid, created])
    assert ordered[0] == created
    assert ordered[-1] == installed


def test_duplicates_are_kept_once() -> None:
    s = OrderStory()
    created = s.created()
    assert canonical([created, redelivered(created), redelivered(created)]) == [created]


def test_a_causation_cycle_from_a_buggy_producer_does_not_break_the_order() -> None:
    s = OrderStory()
    paid = s.paid(t=10)
    server = s.server_created(t=15)
    looped = paid.model_copy(update={"causation_id": server.event_id})  # paid "caused by" its own effect
    events = [looped, server, s.created()]
    orders = {tuple(e.event_id for e in canonical(p)) for p in itertools.permutations(events)}
    assert len(orders) == 1


def test_money_uses_the_currency_minor_unit() -> None:
    assert money(500, "eur") == "5.00 EUR"
    assert money(1234, "usd") == "12.34 USD"
    assert money(500, "jpy") == "500 JPY"


def test_the_customer_timeline_in_words_without_internal_details() -> None:
    s = OrderStory()
    failure = s.failed(t=20, message="NoViableNodeException on wings-03 (panel 400)")
    events = [
        s.created(),
        s.paid(),
        s.retry(t=12, attempt=1),
        s.retry(t=13, attempt=2),
        failure,
        s.replayed(t=1000),
        s.server_created(t=1001),
        s.installed(t=1060),
    ]
    timeline = customer_timeline(reversed(events))
    assert [e.code for e in timeline] == [
        "order_placed",
        "payment_received",
        "retrying",
        "server_error",
        "retried_by_support",
        "server_created",
        "server_ready",
    ]
    assert timeline[1].detail == "5.00 EUR"
    assert timeline[2].detail is not None and "2 times" in timeline[2].detail
    text = json.dumps([[e.title, e.detail] for e in timeline])
    for internal in ("NoViable", "wings", "panel", "no_capacity", "a1b2c3d4", str(failure.event_id), "corr-"):
        assert internal not in text
    assert str(uuid.UUID(int=0)) not in text


@pytest.mark.parametrize(
    ("reason", "title", "words"),
    [
        ("provisioning_failed", "Payment refunded", "could not create your server"),
        ("duplicate_payment", "Duplicate payment refunded", "paid twice"),
        ("paid_after_expiry", "Payment refunded", "after the order expired"),
        ("goodwill", "Payment refunded", "5.00 EUR"),
    ],
)
def test_refunds_are_explained(reason: str, title: str, words: str) -> None:
    s = OrderStory()
    [*_, entry] = customer_timeline([s.created(), s.paid(), s.refunded(reason=reason)])
    assert entry.title == title
    assert entry.detail is not None and words in entry.detail


def test_operator_summaries_keep_every_internal_detail() -> None:
    s = OrderStory()
    paid = s.paid()
    assert "cs_test_1" in operator_summary(paid)
    failure = operator_summary(s.failed(reason=FailureReason.NO_CAPACITY, message="NoViableNodeException"))
    assert "no_capacity" in failure and "NoViableNodeException" in failure and "replayable" in failure
    server = operator_summary(s.server_created(identifier="srv0001", adopted=True))
    assert "adopted" in server and "srv0001" in server and "panel user 7" in server
    assert "replay 2" in operator_summary(s.replayed(replay_count=2))
    assert "retry 1 scheduled in 5s" in operator_summary(s.retry())
