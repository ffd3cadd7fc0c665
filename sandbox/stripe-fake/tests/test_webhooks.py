"""Webhook delivery: signatures over the exact bytes (cases 1-5), retries, filtering, ordering control."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import stripe

from stripe_fake.config import FakeConfig
from stripe_fake.signing import signature_header
from stripe_fake.testing import FakeStripeControl, FakeStripeServer, ReceivedRequest, WebhookReceiver, wait_until

pytestmark = pytest.mark.contract

Params = Callable[..., Any]  # SDK params are TypedDicts; the factory builds plain dicts
SECRET = "whsec_delivery_tests"


@pytest.fixture
def delivered(
    client: stripe.StripeClient, params_for: Params, control: FakeStripeControl, receiver: WebhookReceiver
) -> ReceivedRequest:
    """One real ``checkout.session.completed`` delivery."""
    control.add_endpoint(receiver.url, SECRET)
    session = client.v1.checkout.sessions.create(params=params_for("ord_sig"))
    control.pay(session.id)
    [request] = receiver.wait_for(1)
    return request


def test_delivery_headers_and_exact_pretty_body(delivered: ReceivedRequest) -> None:
    assert delivered.headers["content-type"] == "application/json; charset=utf-8"
    assert delivered.headers["user-agent"] == "Stripe/1.0 (+https://stripe.com/docs/webhooks)"
    parts = [p.split("=", 1) for p in delivered.headers["stripe-signature"].split(",")]
    assert [k for k, _ in parts] == ["t", "v1", "v0"]
    body = delivered.json()
    assert delivered.body == json.dumps(body, indent=2, ensure_ascii=False).encode("utf-8")
    assert delivered.body.startswith(b'{\n  "id": "evt_')
    assert body["object"] == "event" and body["type"] == "checkout.session.completed"


def test_valid_signature_verifies_from_bytes_and_str(delivered: ReceivedRequest) -> None:
    """Case 1."""
    header = delivered.headers["stripe-signature"]
    event = stripe.Webhook.construct_event(delivered.body, header, SECRET)
    assert event.type == "checkout.session.completed"
    assert stripe.Webhook.construct_event(delivered.body.decode("utf-8"), header, SECRET).id == event.id
    client = stripe.StripeClient("sk_test_x")
    assert client.construct_event(delivered.body, header, SECRET).id == event.id


def test_reserialized_body_fails(delivered: ReceivedRequest) -> None:
    """Case 2: ``json.dumps(json.loads(body))`` under the original header is rejected."""
    header = delivered.headers["stripe-signature"]
    for body in (json.dumps(delivered.json()), json.dumps(delivered.json(), indent=2)):
        with pytest.raises(stripe.SignatureVerificationError, match="No signatures found matching"):
            stripe.Webhook.construct_event(body, header, SECRET)


def test_bad_secret_or_header_fails(delivered: ReceivedRequest) -> None:
    """Case 3: wrong secret, missing header, unparsable header, no ``v1``."""
    header = delivered.headers["stripe-signature"]
    with pytest.raises(stripe.SignatureVerificationError, match="No signatures found matching"):
        stripe.Webhook.construct_event(delivered.body, header, "whsec_wrong")
    with pytest.raises(stripe.SignatureVerificationError, match="No Stripe-Signature header"):
        stripe.Webhook.construct_event(delivered.body, "", SECRET)
    with pytest.raises(stripe.SignatureVerificationError, match="Unable to extract timestamp"):
        stripe.Webhook.construct_event(delivered.body, "abc", SECRET)
    without_v1 = ",".join(p for p in header.split(",") if not p.startswith("v1="))
    assert without_v1.startswith("t=") and ",v0=" in without_v1
    with pytest.raises(stripe.SignatureVerificationError, match="expected scheme v1"):
        stripe.Webhook.construct_event(delivered.body, without_v1, SECRET)


def test_tolerance_applies_to_the_delivered_body(delivered: ReceivedRequest) -> None:
    """Case 4 with the real bytes: older than 300 s fails, 299 s passes."""
    now = int(time.time())
    stale = signature_header(delivered.body, [SECRET], now - 301)
    with pytest.raises(stripe.SignatureVerificationError, match="tolerance zone"):
        stripe.Webhook.construct_event(delivered.body, stale, SECRET)
    fresh = signature_header(delivered.body, [SECRET], now - 299)
    assert stripe.Webhook.construct_event(delivered.body, fresh, SECRET).type == "checkout.session.completed"


def test_signature_time_follows_the_fake_clock(
    client: stripe.StripeClient, params_for: Params, control: FakeStripeControl, receiver: WebhookReceiver
) -> None:
    """``t=`` is the fake clock; a future timestamp is accepted by the SDK (only the past is checked)."""
    control.add_endpoint(receiver.url, SECRET)
    session = client.v1.checkout.sessions.create(params=params_for(expires_at=control.now() + 7200))
    control.advance(3600)
    control.pay(session.id)
    [request] = receiver.wait_for(1)
    t = int(request.headers["stripe-signature"].split(",")[0][2:])
    assert t >= int(time.time()) + 3590
    assert stripe.Webhook.construct_event(request.body, request.headers["stripe-signature"], SECRET)


def test_secret_rotation_sends_one_v1_per_secret(
    client: stripe.StripeClient, params_for: Params, control: FakeStripeControl, receiver: WebhookReceiver
) -> None:
    """Case 5: during a roll both secrets sign; a receiver holding either one accepts."""
    endpoint = control.add_endpoint(receiver.url, secrets=["whsec_new", "whsec_old"])
    assert endpoint["secrets"] == ["whsec_new", "whsec_old"]
    session = client.v1.checkout.sessions.create(params=params_for())
    control.pay(session.id)
    [request] = receiver.wait_for(1)
    header = request.headers["stripe-signature"]
    assert [p.split("=", 1)[0] for p in header.split(",")] == ["t", "v1", "v1", "v0"]
    for secret in ("whsec_new", "whsec_old"):
        assert stripe.WebhookSignature.verify_header(request.body.decode(), header, secret, 300)

    rolled = control.http.post(f"/_fake/webhook_endpoints/{endpoint['id']}", json={"secret": "whsec_new"}).json()
    assert rolled["secrets"] == ["whsec_new"]
    control.http.post(f"/_fake/events/{request.json()['id']}/redeliver")
    second = receiver.wait_for(2)[1]
    assert stripe.Webhook.construct_event(second.body, second.headers["stripe-signature"], "whsec_new")
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(second.body, second.headers["stripe-signature"], "whsec_old")


def test_retries_until_2xx_with_fresh_timestamp_each_attempt(
    client: stripe.StripeClient, params_for: Params, control: FakeStripeControl
) -> None:
    """500, 500, 200: three attempts, three different ``t=``, each valid; none after the 2xx."""

    def tick(_request: ReceivedRequest) -> None:
        control.http.post("/_fake/clock/advance", json={"seconds": 7})

    with WebhookReceiver([500, 500], on_request=tick) as receiver:
        control.add_endpoint(receiver.url, SECRET)
        session = client.v1.checkout.sessions.create(params=params_for())
        control.pay(session.id)
        requests = receiver.wait_for(3)
        attempts = control.wait_deliveries_idle()["data"]
        assert len(receiver.requests) == 3
    headers = [r.headers["stripe-signature"] for r in requests]
    timestamps = [int(h.split(",")[0][2:]) for h in headers]
    assert len(set(timestamps)) == 3 and timestamps == sorted(timestamps)
    assert len({r.body for r in requests}) == 1
    for request in requests:
        stripe.WebhookSignature.verify_header(request.body.decode(), request.headers["stripe-signature"], SECRET, None)
    assert [(a["attempt"], a["status_code"], a["succeeded"]) for a in attempts] == [
        (1, 500, False),
        (2, 500, False),
        (3, 200, True),
    ]
    assert [a["timestamp"] for a in attempts] == timestamps
    assert attempts[0]["next_retry_in_seconds"] == 0.05 and attempts[2]["next_retry_in_seconds"] is None
    event_id = requests[0].json()["id"]
    assert client.v1.events.retrieve(event_id).pending_webhooks == 0


def test_gives_up_after_max_attempts(
    client: stripe.StripeClient, params_for: Params, control: FakeStripeControl
) -> None:
    with WebhookReceiver(default_status=503) as receiver:
        control.add_endpoint(receiver.url, SECRET)
        session = client.v1.checkout.sessions.create(params=params_for())
        control.pay(session.id)
        receiver.wait_for(4)
        attempts = control.wait_deliveries_idle()["data"]
    assert [a["attempt"] for a in attempts] == [1, 2, 3, 4]
    assert attempts[-1]["next_retry_in_seconds"] is None
    event = control.events()[0]
    assert event["pending_webhooks"] == 1
    undelivered = client.v1.events.list(params={"delivery_success": False})
    assert [e.id for e in undelivered.data] == [event["id"]]


def test_connection_errors_are_retried(
    client: stripe.StripeClient, params_for: Params, control: FakeStripeControl
) -> None:
    with WebhookReceiver() as gone:
        url = gone.url
    control.add_endpoint(url, SECRET)
    session = client.v1.checkout.sessions.create(params=params_for())
    control.pay(session.id)
    attempts = control.wait_attempts(4)
    assert len(control.wait_deliveries_idle()["data"]) == 4
    assert all(a["status_code"] is None and a["error"] for a in attempts)


def test_event_type_filtering(
    client: stripe.StripeClient, params_for: Params, control: FakeStripeControl, receiver: WebhookReceiver
) -> None:
    with WebhookReceiver() as everything:
        control.add_endpoint(receiver.url, SECRET, events=["checkout.session.completed"])
        control.add_endpoint(everything.url, SECRET)
        paid = client.v1.checkout.sessions.create(params=params_for("ord_paid"))
        dropped = client.v1.checkout.sessions.create(params=params_for("ord_dropped"))
        client.v1.checkout.sessions.expire(dropped.id)
        control.pay(paid.id)
        all_types = sorted(r.json()["type"] for r in everything.wait_for(2))
        control.wait_deliveries_idle()
    assert all_types == ["checkout.session.completed", "checkout.session.expired"]
    assert [r.json()["type"] for r in receiver.requests] == ["checkout.session.completed"]
    completed = control.events(type="checkout.session.completed")[0]
    expired = control.events(type="checkout.session.expired")[0]
    assert completed["pending_webhooks"] == 0 and expired["pending_webhooks"] == 0


def _three_expired_events(client: stripe.StripeClient, params_for: Params) -> list[str]:
    ids = []
    for n in range(3):
        session = client.v1.checkout.sessions.create(params=params_for(f"ord_q{n}"))
        client.v1.checkout.sessions.expire(session.id)
        ids.append(session.id)
    return ids


def test_pause_then_flush_in_reverse_order(
    client: stripe.StripeClient, params_for: Params, control: FakeStripeControl, receiver: WebhookReceiver
) -> None:
    control.add_endpoint(receiver.url, SECRET)
    assert control.http.post("/_fake/deliveries/pause").json()["paused"] is True
    session_ids = _three_expired_events(client, params_for)
    status = control.deliveries()
    assert (status["queued"], status["data"], status["paused"]) == (3, [], True)
    assert receiver.requests == []
    flushed = control.http.post("/_fake/deliveries/flush", params={"order": "reverse"}).json()
    assert flushed == {"paused": True, "delivered": 3, "order": "reverse"}
    received = [r.json()["data"]["object"]["id"] for r in receiver.wait_for(3)]
    assert received == list(reversed(session_ids))
    # still paused: a new event queues again; resume sends it and switches queueing off
    client.v1.checkout.sessions.create(params=params_for("ord_late"))
    late = client.v1.checkout.sessions.create(params=params_for("ord_late2"))
    client.v1.checkout.sessions.expire(late.id)
    assert control.deliveries()["queued"] == 1
    assert control.http.post("/_fake/deliveries/resume").json() == {"paused": False, "delivered": 1}
    assert receiver.wait_for(4)[3].json()["data"]["object"]["id"] == late.id


def test_resume_delivers_in_creation_order(
    client: stripe.StripeClient, params_for: Params, control: FakeStripeControl, receiver: WebhookReceiver
) -> None:
    control.add_endpoint(receiver.url, SECRET)
    control.http.post("/_fake/deliveries/pause")
    session_ids = _three_expired_events(client, params_for)
    control.http.post("/_fake/deliveries/resume")
    assert [r.json()["data"]["object"]["id"] for r in receiver.wait_for(3)] == session_ids
    assert control.deliveries()["paused"] is False


def test_reset_clears_data_but_keeps_start_endpoint(params_for: Params) -> None:
    """``DELETE /_fake/data`` keeps the endpoint from the start configuration (and its filter)."""
    with (
        WebhookReceiver() as configured,
        WebhookReceiver() as extra,
        FakeStripeServer(
            FakeConfig(
                webhook_url=configured.url,
                webhook_secret="whsec_from_start",
                webhook_events=("checkout.session.completed",),
                retry_base_seconds=0.05,
            )
        ) as server,
    ):
        control = FakeStripeControl(server.url)
        control.add_endpoint(extra.url, SECRET)
        assert len(control.http.get("/_fake/webhook_endpoints").json()["data"]) == 2
        reset = control.reset()
        [kept] = reset["webhook_endpoints"]
        assert kept["url"] == configured.url and kept["configured_at_start"] is True
        assert kept["enabled_events"] == ["checkout.session.completed"]
        client = stripe.StripeClient("sk_test_start", base_addresses={"api": server.url})
        now = control.now()
        first = client.v1.checkout.sessions.create(params=params_for(expires_at=now + 3600))
        second = client.v1.checkout.sessions.create(params=params_for(expires_at=now + 3600))
        client.v1.checkout.sessions.expire(second.id)
        control.pay(first.id)
        [request] = configured.wait_for(1)
        control.wait_deliveries_idle()
        assert stripe.Webhook.construct_event(request.body, request.headers["stripe-signature"], "whsec_from_start")
        assert request.json()["type"] == "checkout.session.completed"
        assert len(configured.requests) == 1 and extra.requests == []
        control.close()


def test_periodic_sweep_expires_without_any_access(params_for: Params) -> None:
    with (
        WebhookReceiver() as receiver,
        FakeStripeServer(FakeConfig(webhook_url="http://127.0.0.1:9/unused", expiry_sweep_seconds=0.05)) as server,
    ):
        control = FakeStripeControl(server.url)
        control.reset()
        control.add_endpoint(receiver.url, SECRET, events=["checkout.session.expired"])
        client = stripe.StripeClient("sk_test_sweep", base_addresses={"api": server.url})
        client.v1.checkout.sessions.create(params=params_for(expires_at=control.now() + 1800))
        control.advance(1801, sweep=False)
        [request] = receiver.wait_for(1)
        assert request.json()["type"] == "checkout.session.expired"
        assert request.json()["request"] == {"id": None, "idempotency_key": None}
        control.close()


@pytest.fixture
def slow_retry_server() -> Iterator[FakeStripeServer]:
    with FakeStripeServer(FakeConfig(retry_base_seconds=2.0, max_attempts=2, delivery_timeout_seconds=0.3)) as server:
        yield server


def test_pending_retry_does_not_delay_other_events(slow_retry_server: FakeStripeServer, params_for: Params) -> None:
    control = FakeStripeControl(slow_retry_server.url)
    client = stripe.StripeClient("sk_test_slow", base_addresses={"api": slow_retry_server.url})
    now = control.now()
    with WebhookReceiver([500]) as receiver:
        control.add_endpoint(receiver.url, SECRET)
        first = client.v1.checkout.sessions.create(params=params_for(expires_at=now + 3600))
        client.v1.checkout.sessions.expire(first.id)
        receiver.wait_for(1)
        second = client.v1.checkout.sessions.create(params=params_for(expires_at=now + 3600))
        client.v1.checkout.sessions.expire(second.id)
        requests = receiver.wait_for(2, timeout=1.5)
        assert [r.json()["data"]["object"]["id"] for r in requests] == [first.id, second.id]
        attempts = control.wait_attempts(2, timeout=1)
        assert [(a["attempt"], a["status_code"]) for a in attempts] == [(1, 500), (1, 200)]
        # the first event is still waiting for its retry while the second one is done
        wait_until(lambda: control.deliveries()["in_flight"] == 1, timeout=1)
        assert len(receiver.requests) == 2
    control.close()


def test_receiver_timeout_counts_as_failure(slow_retry_server: FakeStripeServer, params_for: Params) -> None:
    control = FakeStripeControl(slow_retry_server.url)
    client = stripe.StripeClient("sk_test_slow", base_addresses={"api": slow_retry_server.url})
    with WebhookReceiver(delay_seconds=0.6) as receiver:
        control.add_endpoint(receiver.url, SECRET)
        session = client.v1.checkout.sessions.create(params=params_for(expires_at=control.now() + 3600))
        client.v1.checkout.sessions.expire(session.id)
        attempt = control.wait_attempts(1, timeout=3)[0]
        assert attempt["status_code"] is None and attempt["error"].startswith("timeout")
        control.reset()
    control.close()


def test_deleted_endpoint_gets_nothing_more(
    client: stripe.StripeClient, params_for: Params, control: FakeStripeControl
) -> None:
    with WebhookReceiver(default_status=500) as receiver:
        endpoint = control.add_endpoint(receiver.url, SECRET)
        session = client.v1.checkout.sessions.create(params=params_for())
        control.pay(session.id)
        receiver.wait_for(1)
        assert control.http.delete(f"/_fake/webhook_endpoints/{endpoint['id']}").json()["deleted"] is True
        control.wait_deliveries_idle()
        assert len(receiver.requests) <= 2


def test_events_api_through_the_sdk(
    client: stripe.StripeClient, params_for: Params, control: FakeStripeControl
) -> None:
    a = client.v1.checkout.sessions.create(params=params_for("ord_ev_a"))
    b = client.v1.checkout.sessions.create(params=params_for("ord_ev_b"))
    control.pay(a.id)
    client.v1.checkout.sessions.expire(b.id)
    listed = client.v1.events.list(params={"types": ["checkout.session.*"]})
    assert [e.type for e in listed.data] == ["checkout.session.expired", "checkout.session.completed"]
    only = client.v1.events.list(params={"type": "checkout.session.completed"})
    assert [e.data.object["id"] for e in only.data] == [a.id]
    event = client.v1.events.retrieve(only.data[0].id)
    assert isinstance(event, stripe.Event) and event.pending_webhooks == 0
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.events.retrieve("evt_missing")


async def test_many_sessions_deliver_promptly(fake_server: FakeStripeServer, control: FakeStripeControl) -> None:
    """A burst of 100 paid sessions through the async SDK: every webhook is delivered promptly."""
    import asyncio

    from stripe_fake.testing import wait_until as poll

    with WebhookReceiver() as receiver:
        control.add_endpoint(receiver.url, SECRET)
        client = stripe.StripeClient("sk_test_burst", base_addresses={"api": fake_server.url})
        now = control.now()
        async with httpx.AsyncClient(base_url=fake_server.url) as http:

            async def one(n: int) -> None:
                params: Any = {
                    "mode": "payment",
                    "ui_mode": "embedded_page",
                    "line_items": [
                        {
                            "price_data": {"currency": "eur", "unit_amount": 1500, "product_data": {"name": "S"}},
                            "quantity": 1,
                        }
                    ],
                    "metadata": {"serverOrderId": f"ord_burst_{n}"},
                    "return_url": "https://app/r?session_id={CHECKOUT_SESSION_ID}",
                    "expires_at": now + 3600,
                }
                session = await client.v1.checkout.sessions.create_async(params=params)
                response = await http.post(f"/_fake/sessions/{session.id}/pay", json={"outcome": "paid"})
                response.raise_for_status()

            await asyncio.gather(*(one(n) for n in range(100)))
        # deliveries keep up with the API: all of them land shortly after the last payment
        await asyncio.to_thread(poll, lambda: len(receiver.requests) >= 100, timeout=15)
        assert len({r.json()["id"] for r in receiver.requests}) == 100
