"""Bad input gets a clear error and loses nothing; no request gets a 500."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest
import stripe

from devstack import WEBHOOK_SECRET, Stack

from .conftest import customer_token
from .support import Api, BrokerProbe, eventually

pytestmark = pytest.mark.integration


async def test_unknown_game_plan_or_setting_is_422_naming_the_field(api: Api) -> None:
    token = customer_token()
    cases: tuple[tuple[dict[str, Any], str], ...] = (
        ({"game_id": "tetris"}, "game_id"),
        ({"plan_id": "gigantic"}, "plan_id"),
        ({"settings": {"OP_MODE": "1"}}, "settings.OP_MODE"),
        ({"settings": {"MINECRAFT_VERSION": "$(rm -rf /)"}}, "settings.MINECRAFT_VERSION"),
        ({"server_name": "   "}, "server_name"),
    )
    for body, field in cases:
        response = await api.place_order(token, **body)
        assert response.status_code == 422, response.text
        assert field in [d["field"] for d in response.json()["detail"]], response.text


async def test_malformed_requests_are_422_and_missing_tokens_401(api: Api) -> None:
    token = customer_token()
    response = await api.http.post(
        api.url("order-service", "/orders"),
        headers={**api.auth(token), "Idempotency-Key": str(uuid.uuid4()), "Content-Type": "application/json"},
        content=b'{"game_id": ',
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "body"
    no_key = await api.http.post(api.url("order-service", "/orders"), headers=api.auth(token), json={})
    assert no_key.status_code == 422
    assert (await api.http.post(api.url("order-service", "/orders"), json={})).status_code == 401
    bad = await api.http.get(
        api.url("status-service", f"/orders/{uuid.uuid4()}/status"), headers={"Authorization": "Bearer not-a-jwt"}
    )
    assert bad.status_code == 401


async def test_the_same_idempotency_key_makes_one_order(api: Api) -> None:
    token, key = customer_token(), str(uuid.uuid4())
    first = await api.place_order(token, key=key)
    second = await api.place_order(token, key=key)
    assert first.status_code == 201
    assert second.status_code == 200
    assert second.headers["Idempotent-Replayed"] == "true"
    assert first.json()["id"] == second.json()["id"]
    other = await api.place_order(token, key=key, plan_id="pro")
    assert other.status_code == 409


async def test_another_customers_order_and_an_unknown_order_are_404(api: Api) -> None:
    owner, stranger = customer_token(), customer_token()
    order_id = (await api.place_order(owner)).json()["id"]
    await api.wait_status(owner, order_id, "PENDING")
    for oid in (order_id, str(uuid.uuid4())):
        assert (await api.order(stranger, oid)).status_code == 404
        assert (await api.open_checkout(stranger, oid)).status_code == 404
        assert (await api.status(stranger, oid)).status_code == 404


def _signed(body: str, secret: str = WEBHOOK_SECRET, *, timestamp: int | None = None) -> dict[str, str]:
    header = stripe.WebhookSignature.generate_signature_header(body, secret, timestamp or int(time.time()))
    return {"Stripe-Signature": header, "Content-Type": "application/json"}


async def test_webhooks_with_a_wrong_or_missing_signature_are_400(api: Api) -> None:
    body = json.dumps({"id": "evt_x", "type": "checkout.session.completed", "data": {"object": {"id": "cs_x"}}})
    url = api.url("payment-service", "/webhooks/stripe")
    assert (await api.http.post(url, content=body, headers=_signed(body, "whsec_wrong"))).status_code == 400
    assert (await api.http.post(url, content=body)).status_code == 400
    stale = _signed(body, timestamp=int(time.time()) - 301)
    assert (await api.http.post(url, content=body, headers=stale)).status_code == 400
    assert (await api.http.post(url, content="not json", headers=_signed("not json"))).status_code == 400
    ignored = json.dumps({"id": "evt_y", "type": "customer.created", "data": {"object": {"id": "cus_1"}}})
    response = await api.http.post(url, content=ignored, headers=_signed(ignored))
    assert response.status_code == 200
    assert response.json()["outcome"] == "ignored"


async def test_a_malformed_message_is_dead_lettered_with_its_reason_and_the_consumer_keeps_working(
    api: Api, broker: BrokerProbe, stack: Stack
) -> None:
    marker = str(uuid.uuid4())
    await broker.publish_to_queue("provisioner.order-paid", b'{"this is": "not an event"}', message_id=marker)

    async def dead_lettered() -> dict[str, object] | None:
        for message in await broker.peek("provisioner.order-paid.dlq"):
            if message.message_id == marker:
                return dict(message.headers or {})
        return None

    headers = await eventually(dead_lettered, what="the malformed message in the DLQ")
    assert headers["x-spawnpoint-reason"] == "malformed_message"
    assert "event_type" in str(headers["x-spawnpoint-detail"]) or "Field required" in str(
        headers["x-spawnpoint-detail"]
    )
    assert await broker.depth("provisioner.order-paid") == 0
    ready = await api.http.get(api.url("provisioner", "/readyz"))
    assert ready.status_code == 200, ready.text
