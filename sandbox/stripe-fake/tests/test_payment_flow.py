"""The pay-then-provision flow against the fake: cases 12, 13, 17, 18, 20, 21, declined cards."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
import stripe

from stripe_fake.testing import FakeStripeControl, WebhookReceiver

pytestmark = pytest.mark.contract

Params = Callable[..., Any]  # SDK params are TypedDicts; the factory builds plain dicts
SECRET = "whsec_flow_receiver"


def _verified(receiver: WebhookReceiver, count: int) -> list[stripe.Event]:
    """Wait for ``count`` deliveries and verify each with the SDK, exactly as a receiver must."""
    return [
        stripe.Webhook.construct_event(r.body, r.headers["stripe-signature"], SECRET) for r in receiver.wait_for(count)
    ]


def test_paid_session_emits_completed_and_fulfils(
    client: stripe.StripeClient, params_for: Params, control: FakeStripeControl, receiver: WebhookReceiver
) -> None:
    """Case 12: pay -> ``checkout.session.completed`` -> retrieve(expand line_items) shows paid."""
    control.add_endpoint(receiver.url, SECRET)
    session = client.v1.checkout.sessions.create(params=params_for("ord_12"))
    paid = control.pay(session.id, "paid", email="buyer@example.test")
    assert paid["status"] == "complete" and paid["payment_status"] == "paid"

    [event] = _verified(receiver, 1)
    assert event.type == "checkout.session.completed"
    assert event.api_version == "2026-10-28.endive"
    assert event.livemode is False and event.pending_webhooks == 1
    assert event.request is not None
    assert event.request.id is None and event.request.idempotency_key is None
    obj = event.data.object
    assert (obj["id"], obj["status"], obj["payment_status"]) == (session.id, "complete", "paid")
    assert obj["metadata"]["serverOrderId"] == "ord_12"
    assert obj["client_reference_id"] == "ord_12"
    assert obj["payment_intent"].startswith("pi_")
    assert obj["customer_details"]["email"] == "buyer@example.test"
    assert "line_items" not in obj  # webhook payloads never include line items

    fulfilled = client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["line_items", "payment_intent"]})
    assert (fulfilled.status, fulfilled.payment_status) == ("complete", "paid")
    assert fulfilled.line_items is not None and fulfilled.line_items.data[0].quantity == 1
    intent = fulfilled.payment_intent
    assert isinstance(intent, stripe.PaymentIntent)
    assert intent.status == "succeeded" and intent.amount == 1500 and intent.currency == "eur"
    assert intent.metadata.to_dict() == {"serverOrderId": "ord_12"}
    assert intent.latest_charge is not None and str(intent.latest_charge).startswith("ch_")
    same = client.v1.payment_intents.retrieve(intent.id)
    assert same.status == "succeeded"

    again = httpx.post(f"{control.http.base_url}/_fake/sessions/{session.id}/pay", json={"outcome": "paid"})
    assert again.status_code == 400
    assert "`complete`" in again.json()["error"]["message"]


def test_redelivered_event_arrives_three_times_with_same_id(
    client: stripe.StripeClient, params_for: Params, control: FakeStripeControl, receiver: WebhookReceiver
) -> None:
    """Case 13: duplicates carry the same event id and body; every delivery got a 2xx."""
    control.add_endpoint(receiver.url, SECRET)
    session = client.v1.checkout.sessions.create(params=params_for("ord_13"))
    control.pay(session.id)
    [first] = receiver.wait_for(1)
    event_id = first.json()["id"]
    for _ in range(2):
        response = control.http.post(f"/_fake/events/{event_id}/redeliver")
        assert response.json() == {"event_id": event_id, "deliveries_scheduled": 1}
    deliveries = receiver.wait_for(3)
    assert {r.json()["id"] for r in deliveries} == {event_id}
    assert {r.body for r in deliveries} == {first.body}
    attempts = control.wait_deliveries_idle()["data"]
    assert [a["status_code"] for a in attempts] == [200, 200, 200]
    assert len(control.events(type="checkout.session.completed")) == 1


def test_clock_past_expiry_emits_one_automatic_expired_event(
    client: stripe.StripeClient, params_for: Params, control: FakeStripeControl, receiver: WebhookReceiver
) -> None:
    """Case 17: time passes ``expires_at`` -> ``expired`` arrives (request null); pay is refused."""
    control.add_endpoint(receiver.url, SECRET)
    session = client.v1.checkout.sessions.create(params=params_for("ord_17"))
    advanced = control.advance(36 * 60)
    assert advanced["expired_sessions"] == 1
    [event] = _verified(receiver, 1)
    assert event.type == "checkout.session.expired"
    assert event.data.object["status"] == "expired"
    assert event.data.object["payment_status"] == "unpaid"
    assert event.data.object["payment_intent"] is None
    assert event.request is not None
    assert event.request.id is None and event.request.idempotency_key is None

    fetched = client.v1.checkout.sessions.retrieve(session.id)
    assert fetched.status == "expired" and fetched.client_secret == session.client_secret and fetched.url is None
    client.v1.checkout.sessions.retrieve(session.id)
    assert len(control.events(type="checkout.session.expired")) == 1

    refused = control.http.post(f"/_fake/sessions/{session.id}/pay", json={"outcome": "paid"})
    assert refused.status_code == 400
    assert "`expired`" in refused.json()["error"]["message"]


def test_lazy_expiry_on_retrieve_emits_once(
    client: stripe.StripeClient, params_for: Params, control: FakeStripeControl, receiver: WebhookReceiver
) -> None:
    """Without a sweep, the first access after ``expires_at`` expires the session, exactly once."""
    control.add_endpoint(receiver.url, SECRET)
    session = client.v1.checkout.sessions.create(params=params_for("ord_lazy"))
    control.advance(40 * 60, sweep=False)
    assert control.events(type="checkout.session.expired") == []
    first = client.v1.checkout.sessions.retrieve(session.id)
    second = client.v1.checkout.sessions.retrieve(session.id)
    assert first.status == second.status == "expired"
    [event] = control.events(type="checkout.session.expired")
    assert event["request"] == {"id": None, "idempotency_key": None}
    assert len(receiver.wait_for(1)) == 1
    with pytest.raises(stripe.InvalidRequestError, match="has a status of `expired`"):
        client.v1.checkout.sessions.expire(session.id)


def test_expire_via_api_records_the_request(
    client: stripe.StripeClient, params_for: Params, control: FakeStripeControl, receiver: WebhookReceiver
) -> None:
    control.add_endpoint(receiver.url, SECRET)
    session = client.v1.checkout.sessions.create(params=params_for("ord_exp"))
    expired = client.v1.checkout.sessions.expire(session.id, options={"idempotency_key": "expire:ord_exp"})
    assert expired.status == "expired"
    [event] = _verified(receiver, 1)
    assert event.type == "checkout.session.expired"
    assert expired.last_response is not None
    assert event.request is not None
    assert event.request.id == expired.last_response.request_id
    assert event.request.idempotency_key == "expire:ord_exp"


def test_expire_after_payment_is_refused(
    client: stripe.StripeClient, params_for: Params, control: FakeStripeControl
) -> None:
    """Case 18: the old session was paid meanwhile: expire says `complete`, exact message."""
    session = client.v1.checkout.sessions.create(params=params_for("ord_18"))
    control.pay(session.id)
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.checkout.sessions.expire(session.id)
    assert info.value.http_status == 400
    assert info.value.json_body == {
        "error": {
            "message": 'Only Checkout Sessions with a status in ["open"] can be expired. This Checkout Session '
            "has a status of `complete`.",
            "type": "invalid_request_error",
        }
    }


def test_delayed_payment_then_success(
    client: stripe.StripeClient, params_for: Params, control: FakeStripeControl, receiver: WebhookReceiver
) -> None:
    """Case 20: completed+unpaid (PI processing), then async_payment_succeeded (paid)."""
    control.add_endpoint(receiver.url, SECRET)
    session = client.v1.checkout.sessions.create(params=params_for("ord_20"))
    control.pay(session.id, "delayed")
    [completed] = _verified(receiver, 1)
    assert completed.type == "checkout.session.completed"
    assert (completed.data.object["status"], completed.data.object["payment_status"]) == ("complete", "unpaid")
    pending = client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["payment_intent"]})
    assert isinstance(pending.payment_intent, stripe.PaymentIntent)
    assert pending.payment_intent.status == "processing"

    control.settle(session.id, "succeeded")
    events = _verified(receiver, 2)
    assert events[1].type == "checkout.session.async_payment_succeeded"
    assert events[1].data.object["payment_status"] == "paid"
    done = client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["payment_intent"]})
    assert done.payment_status == "paid"
    assert isinstance(done.payment_intent, stripe.PaymentIntent) and done.payment_intent.status == "succeeded"
    # the snapshot in the first event did not change afterwards
    assert completed.data.object["payment_status"] == "unpaid"


def test_delayed_payment_then_failure(
    client: stripe.StripeClient, params_for: Params, control: FakeStripeControl, receiver: WebhookReceiver
) -> None:
    """Case 21: async_payment_failed; session stays complete/unpaid, PI requires_payment_method."""
    control.add_endpoint(receiver.url, SECRET)
    session = client.v1.checkout.sessions.create(params=params_for("ord_21"))
    control.pay(session.id, "delayed")
    control.settle(session.id, "failed")
    # Both deliveries are in flight at once, and Stripe does not promise their order: compare in the order
    # the events were created.
    created = [e["id"] for e in control.events(session_id=session.id)]
    events = sorted(_verified(receiver, 2), key=lambda e: created.index(e.id))
    assert [e.type for e in events] == ["checkout.session.completed", "checkout.session.async_payment_failed"]
    assert (events[1].data.object["status"], events[1].data.object["payment_status"]) == ("complete", "unpaid")
    intent_id = events[1].data.object["payment_intent"]
    assert client.v1.payment_intents.retrieve(intent_id).status == "requires_payment_method"
    with pytest.raises(stripe.InvalidRequestError, match="does not have a successful charge"):
        client.v1.refunds.create(params={"payment_intent": intent_id})
    again = control.http.post(f"/_fake/sessions/{session.id}/async", json={"result": "succeeded"})
    assert again.status_code == 400


def test_declined_card_keeps_session_open_and_emits_nothing(
    client: stripe.StripeClient, params_for: Params, control: FakeStripeControl
) -> None:
    session = client.v1.checkout.sessions.create(params=params_for("ord_decl"))
    declined = control.pay(session.id, "declined")
    assert declined["status"] == "open" and declined["payment_status"] == "unpaid"
    assert declined["payment_intent"]["status"] == "requires_payment_method"
    assert declined["payment_intent"]["last_payment_error"]["code"] == "card_declined"
    assert control.events() == []
    paid = control.pay(session.id, "paid")
    assert paid["payment_intent"]["id"] == declined["payment_intent"]["id"]
    assert paid["payment_intent"]["status"] == "succeeded"
    assert [e["type"] for e in control.events()] == ["checkout.session.completed"]


def test_async_on_a_non_delayed_session_is_refused(
    client: stripe.StripeClient, params_for: Params, control: FakeStripeControl
) -> None:
    session = client.v1.checkout.sessions.create(params=params_for())
    response = control.http.post(f"/_fake/sessions/{session.id}/async", json={"result": "succeeded"})
    assert response.status_code == 400
    assert "delayed" in response.json()["error"]["message"]
    assert control.http.post("/_fake/sessions/cs_test_nope/pay", json={"outcome": "paid"}).status_code == 404


def test_payment_intent_404(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.payment_intents.retrieve("pi_missing")
    assert (info.value.http_status, info.value.code) == (404, "resource_missing")
    assert "No such payment_intent: 'pi_missing'" in str(info.value.user_message)


def test_control_filters_by_order_and_session(
    client: stripe.StripeClient, params_for: Params, control: FakeStripeControl
) -> None:
    a = client.v1.checkout.sessions.create(params=params_for("ord_a"))
    b = client.v1.checkout.sessions.create(params=params_for("ord_b"))
    control.pay(a.id)
    client.v1.checkout.sessions.expire(b.id)
    assert [s["id"] for s in control.sessions(order_id="ord_b")] == [b.id]
    assert [s["id"] for s in control.sessions(status="complete")] == [a.id]
    assert [e["type"] for e in control.events(order_id="ord_a")] == ["checkout.session.completed"]
    assert [e["type"] for e in control.events(session_id=b.id)] == ["checkout.session.expired"]
    assert [e["data"]["object"]["id"] for e in control.events(type="checkout.session.completed")] == [a.id]
