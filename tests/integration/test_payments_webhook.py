"""The Stripe webhook over HTTP against the running payment-service: signature checks on the raw bytes,
the tolerance, secret rotation, bodies that are not events. Each refusal is a 400 (never a 500) and is
counted on ``/metrics``. (The reference's known-answer vector, signed at a fixed past time, is checked in
payment-service's unit tests with an injected clock.)"""

from __future__ import annotations

import json
import time
import uuid

import pytest
import stripe

from devstack import WEBHOOK_SECRET

from .payments_support import StripeControl, metric_value, open_checkout
from .support import Api

pytestmark = pytest.mark.integration


def _sign(body: str, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    header: str = stripe.WebhookSignature.generate_signature_header(body, secret, timestamp or int(time.time()))
    return header


async def _post(api: Api, body: bytes | str, header: str | None) -> int:
    headers = {"Content-Type": "application/json; charset=utf-8"}
    if header is not None:
        headers["Stripe-Signature"] = header
    response = await api.http.post(api.url("payment-service", "/webhooks/stripe"), content=body, headers=headers)
    return response.status_code


async def test_a_real_delivery_is_accepted_and_every_tampering_is_a_400(api: Api) -> None:
    stripe_fake = StripeControl(api)
    checkout = await open_checkout(api)
    assert (await stripe_fake.pay(checkout.session_id)).status_code == 200
    event = await stripe_fake.event(checkout.session_id, "checkout.session.completed")
    # The exact bytes the stand-in delivered (pretty-printed, raw UTF-8 with the customer's name "Jürgen Müller").
    body = json.dumps(event, indent=2, ensure_ascii=False)
    assert "Jürgen Müller" in body
    before = await metric_value(api, "payment-service", "payment_webhook_signature_failures_total", reason="mismatch")
    fresh = _sign(body)

    assert await _post(api, body.encode(), fresh) == 200  # a duplicate of the delivered event: accepted, no effect
    assert await _post(api, json.dumps(json.loads(body), indent=2).encode(), fresh) == 400  # re-serialised
    assert await _post(api, json.dumps(json.loads(body), separators=(",", ":")).encode(), fresh) == 400
    assert await _post(api, body.encode(), _sign(body, "whsec_somebody_else")) == 400
    assert await _post(api, body.encode(), None) == 400
    assert await _post(api, body.encode(), f"t={int(time.time())},v0={'0' * 64}") == 400  # no v1
    assert await _post(api, body.encode(), "abc") == 400
    assert await _post(api, body.encode(), _sign(body, timestamp=int(time.time()) - 301)) == 400
    assert await _post(api, body.encode(), _sign(body, timestamp=int(time.time()) - 250)) == 200

    after = await metric_value(api, "payment-service", "payment_webhook_signature_failures_total", reason="mismatch")
    assert after - before == 3
    assert await metric_value(api, "payment-service", "payment_webhook_signature_failures_total", reason="stale") >= 1
    assert await metric_value(api, "payment-service", "payment_webhook_signature_failures_total", reason="no_v1") >= 1
    assert (
        await metric_value(
            api, "payment-service", "payment_webhooks_total", type="checkout.session.completed", outcome="duplicate"
        )
        >= 2
    )


async def test_a_body_that_is_not_an_event_is_400_even_when_signed(api: Api) -> None:
    for body in ("not json", "[1, 2]", '{"type": "checkout.session.completed"}', '{"id": "evt_1", "type": 3}'):
        assert await _post(api, body.encode(), _sign(body)) == 400, body
    no_object = json.dumps({"id": f"evt_{uuid.uuid4().hex}", "type": "checkout.session.completed", "data": {}})
    assert await _post(api, no_object.encode(), _sign(no_object)) == 400
    assert await _post(api, b"\xff\xfe\x00", _sign("x")) == 400


async def test_two_v1_values_with_the_second_valid_are_accepted_and_other_types_are_ignored(api: Api) -> None:
    body = json.dumps({"id": f"evt_{uuid.uuid4().hex}", "object": "event", "type": "payment_intent.created"})
    ts = int(time.time())
    old = _sign(body, "whsec_rolled_away", ts).split("v1=")[1]
    new = _sign(body, WEBHOOK_SECRET, ts).split("v1=")[1]
    response = await api.http.post(
        api.url("payment-service", "/webhooks/stripe"),
        content=body,
        headers={"Stripe-Signature": f"t={ts},v1={old},v1={new},v0={'f' * 64}", "Content-Type": "application/json"},
    )
    assert response.status_code == 200
    assert response.json() == {"received": True, "outcome": "ignored"}
