"""Test clocks (lifecycle, limits, deletion), webhook delivery of clock events, idempotency, lost webhooks."""

from __future__ import annotations

import time

import httpx
import pytest
import stripe
from stripe_fake_support import DAY, START, BillingKit

from stripe_fake.testing import FakeStripeControl, WebhookReceiver, wait_until

pytestmark = pytest.mark.contract

HOUR = 3600
SECRET = "whsec_billing_clocks"


def test_clock_lifecycle_events_and_polling(billing: BillingKit, control: FakeStripeControl) -> None:
    client = billing.client
    clock = client.v1.test_helpers.test_clocks.create({"frozen_time": START, "name": "renewals"})
    assert (clock.object, clock.status, clock.frozen_time, clock.name) == (
        "test_helpers.test_clock",
        "ready",
        START,
        "renewals",
    )
    assert clock.deletes_after > clock.created
    advancing = client.v1.test_helpers.test_clocks.advance(clock.id, {"frozen_time": START + DAY})
    assert advancing.status == "advancing"
    assert advancing.status_details.advancing is not None
    assert advancing.status_details.advancing.target_frozen_time == START + DAY
    ready = control.wait_test_clock_ready(clock.id)
    assert ready["frozen_time"] == START + DAY
    types = [e["type"] for e in control.events()]
    assert types == [
        "test_helpers.test_clock.created",
        "test_helpers.test_clock.advancing",
        "test_helpers.test_clock.ready",
    ]
    assert control.events()[-1]["created"] == START + DAY
    assert [c.id for c in client.v1.test_helpers.test_clocks.list().data] == [clock.id]


def test_advance_limits(billing: BillingKit) -> None:
    """Later than now; at most two intervals of the shortest subscription, or two years without one."""
    client = billing.client
    empty = billing.clock()
    for target in (START, START - 1, START + 2 * 366 * DAY):
        with pytest.raises(stripe.InvalidRequestError) as info:
            client.v1.test_helpers.test_clocks.advance(empty, {"frozen_time": target})
        assert (info.value.http_status, info.value.param) == (400, "frozen_time")
    billing.advance(empty, START + 2 * 365 * DAY)  # exactly two years (2026-2027 has no leap day)

    clock = billing.clock()
    customer = billing.customer(clock)
    billing.subscribe(billing.price(interval="week"), customer)
    billing.subscribe(billing.price(interval="month"), customer)
    with pytest.raises(stripe.InvalidRequestError) as too_far:
        client.v1.test_helpers.test_clocks.advance(clock, {"frozen_time": START + 14 * DAY + 1})
    assert "two intervals of the shortest subscription" in str(too_far.value.user_message)
    billing.advance(clock, START + 14 * DAY)


def test_advance_while_advancing_is_refused(billing: BillingKit, control: FakeStripeControl) -> None:
    """With a slow clock (a control knob), a second advance before ``ready`` is refused."""
    control.billing_settings(test_clock_advance_seconds=0.3)
    clock = billing.clock()
    billing.client.v1.test_helpers.test_clocks.advance(clock, {"frozen_time": START + HOUR})
    assert billing.client.v1.test_helpers.test_clocks.retrieve(clock).status == "advancing"
    with pytest.raises(stripe.InvalidRequestError) as info:
        billing.client.v1.test_helpers.test_clocks.advance(clock, {"frozen_time": START + 2 * HOUR})
    assert info.value.code == "test_clock_not_ready"
    assert control.wait_test_clock_ready(clock)["frozen_time"] == START + HOUR


def test_deleting_a_clock_deletes_its_objects(billing: BillingKit) -> None:
    client = billing.client
    clock = billing.clock()
    customer = billing.customer(clock)
    sub = billing.subscribe(billing.price(), customer)
    bystander = billing.customer()
    deleted = client.v1.test_helpers.test_clocks.delete(clock)
    assert deleted.deleted is True and deleted.id == clock
    for call in (
        lambda: client.v1.customers.retrieve(customer),
        lambda: client.v1.subscriptions.retrieve(sub.id),
        lambda: client.v1.invoices.retrieve(str(sub.latest_invoice)),
        lambda: client.v1.test_helpers.test_clocks.retrieve(clock),
    ):
        with pytest.raises(stripe.InvalidRequestError):
            call()
    assert client.v1.customers.retrieve(bystander).id == bystander
    assert billing.control.event_types()[-1] == "test_helpers.test_clock.deleted"


def test_clock_events_are_delivered_signed_with_wall_clock_time(
    billing: BillingKit, control: FakeStripeControl, receiver: WebhookReceiver
) -> None:
    """``created`` is the simulated time, ``request.id`` null, but ``t=`` is now: the SDK accepts them."""
    clock = billing.clock()
    customer = billing.customer(clock)
    sub = billing.subscribe(billing.price(), customer)
    end = billing.period_end(sub.id)
    wanted = ["invoice.created", "invoice.finalized", "invoice.paid", "invoice.payment_succeeded"]
    control.add_endpoint(receiver.url, SECRET, events=[*wanted, "customer.subscription.updated"])
    billing.advance(clock, end + 2 * HOUR)
    deliveries = receiver.wait_for(5)
    events = [stripe.Webhook.construct_event(r.body, r.headers["stripe-signature"], SECRET) for r in deliveries]
    assert sorted(e.type for e in events) == sorted(
        [
            "customer.subscription.updated",
            "invoice.created",
            "invoice.finalized",
            "invoice.paid",
            "invoice.payment_succeeded",
        ]
    )
    for event, request in zip(events, deliveries, strict=True):
        assert event.created in (end, end + HOUR)
        assert event.request is not None and event.request.id is None
        signed_at = int(request.headers["stripe-signature"].split(",")[0].removeprefix("t="))
        assert abs(signed_at - time.time()) < 60
    paid = next(e for e in events if e.type == "invoice.paid")
    assert isinstance(paid.data.object, stripe.Invoice)
    assert paid.data.object.parent is not None and paid.data.object.parent.subscription_details is not None
    assert paid.data.object.parent.subscription_details.subscription == sub.id


def test_lost_webhook_is_never_delivered_but_listed(
    billing: BillingKit, control: FakeStripeControl, receiver: WebhookReceiver
) -> None:
    """``POST /_fake/deliveries/drop``: the next ``invoice.paid`` vanishes; reconciliation can find it."""
    control.add_endpoint(receiver.url, SECRET)
    rule = control.drop_deliveries("invoice.paid", count=1)
    assert rule["remaining"] == 1
    clock = billing.clock()
    customer = billing.customer(clock)
    billing.subscribe(billing.price(), customer)
    control.wait_deliveries_idle()
    received = {r.json()["type"] for r in receiver.requests}
    assert "invoice.paid" not in received and "invoice.payment_succeeded" in received
    dropped = control.deliveries()["dropped"]
    assert [d["event_type"] for d in dropped] == ["invoice.paid"]
    pending = billing.client.v1.events.list({"delivery_success": False})
    assert [e.type for e in pending.data] == ["invoice.paid"]

    control.redeliver(dropped[0]["event_id"])  # an explicit redelivery is not dropped
    wait_until(lambda: any(r.json()["type"] == "invoice.paid" for r in receiver.requests), message="redelivery")


def test_shuffled_flush_is_reproducible(billing: BillingKit, control: FakeStripeControl) -> None:
    """Billing events go through the same pause/flush controls; ``shuffle`` with a seed is repeatable."""
    orders: list[list[str]] = []
    creation: list[str] = []
    for _ in range(2):
        with WebhookReceiver() as receiver:
            control.reset()
            control.add_endpoint(receiver.url, SECRET)
            control.pause()
            customer = billing.customer()
            billing.subscribe(billing.price(), customer)
            queued = control.deliveries()["queued"]
            response = httpx.post(f"{control.http.base_url}/_fake/deliveries/flush?order=shuffle&seed=7")
            assert response.json()["delivered"] == queued
            orders.append([r.json()["type"] for r in receiver.wait_for(queued)])
            creation = control.event_types()
            control.resume()
    assert orders[0] == orders[1]
    assert sorted(orders[0]) == sorted(creation) and orders[0] != creation


def test_billing_posts_replay_under_idempotency_keys(billing: BillingKit, control: FakeStripeControl) -> None:
    client = billing.client
    price = billing.price()
    customer = client.v1.customers.create({"email": "k@example.test"}, {"idempotency_key": "cus:k"})
    again = client.v1.customers.create({"email": "k@example.test"}, {"idempotency_key": "cus:k"})
    assert again.id == customer.id
    assert again.last_response is not None and again.last_response.headers["idempotent-replayed"] == "true"
    with pytest.raises(stripe.IdempotencyError):
        client.v1.customers.create({"email": "other@example.test"}, {"idempotency_key": "cus:k"})

    sub = billing.subscribe(price, customer.id)
    mark = billing.mark()
    first = client.v1.subscriptions.update(sub.id, {"cancel_at_period_end": True}, {"idempotency_key": "cape:1"})
    second = client.v1.subscriptions.update(sub.id, {"cancel_at_period_end": True}, {"idempotency_key": "cape:1"})
    assert first.canceled_at == second.canceled_at
    assert billing.types_since(mark) == ["customer.subscription.updated"], "a replay executes nothing"
    [event] = billing.events_since(mark)
    assert event["request"]["idempotency_key"] == "cape:1"

    clock = billing.clock()
    one = client.v1.test_helpers.test_clocks.advance(clock, {"frozen_time": START + DAY}, {"idempotency_key": "adv"})
    two = client.v1.test_helpers.test_clocks.advance(clock, {"frozen_time": START + DAY}, {"idempotency_key": "adv"})
    assert one.status == two.status == "advancing"
    control.wait_test_clock_ready(clock)
    assert control.event_types().count("test_helpers.test_clock.advancing") == 1
