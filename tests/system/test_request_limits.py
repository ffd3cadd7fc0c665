"""Every service bounds what one request may cost (finding 10): bodies, settings, metric labels."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY

from order_service.bootstrap import create_app as order_app
from payment_service.bootstrap import create_app as payment_app
from provisioner.bootstrap import create_app as provisioner_app
from spawnpoint_kit.auth import mint_token
from spawnpoint_kit.settings import DEVELOPMENT_JWT_SECRET
from status_service.bootstrap import create_app as status_app

pytestmark = pytest.mark.unit

APPS: dict[str, tuple[Callable[[], FastAPI], str]] = {
    "order-service": (order_app, "/orders"),
    "payment-service": (payment_app, "/checkout-sessions"),
    "provisioner": (provisioner_app, "/validate-settings"),
    "status-service": (status_app, "/operator/orders/00000000-0000-0000-0000-000000000000/trail"),
}


def _client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def _chunks(total: int) -> AsyncIterator[bytes]:
    """A body sent without a Content-Length, so the limit is met while it is read."""
    for _ in range(total // 1024):
        yield b" " * 1024


def _assert_our_413(response: httpx.Response, limit: int) -> None:
    """A frontend developer gets the same JSON error body as every other refusal, and the id to quote."""
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["detail"] == f"the request body is larger than {limit} bytes"
    assert body["correlation_id"] == response.headers["x-correlation-id"]


@pytest.mark.parametrize("service", list(APPS))
async def test_a_body_over_64_kib_is_refused_before_it_is_read(service: str) -> None:
    make, path = APPS[service]
    async with _client(make()) as client:
        declared = await client.post(
            path, content=b"{" + b" " * (65 * 1024) + b"}", headers={"content-type": "application/json"}
        )
        streamed = await client.post(path, content=_chunks(80 * 1024), headers={"content-type": "application/json"})
    _assert_our_413(declared, 64 * 1024)
    if service == "status-service":  # no route of it reads a body: an unread stream is never over the limit
        assert streamed.status_code == 405
    else:
        _assert_our_413(streamed, 64 * 1024)


async def test_the_webhook_takes_a_large_stripe_event_but_not_a_huge_one() -> None:
    async with _client(payment_app()) as client:
        large = await client.post("/webhooks/stripe", content=b"x" * (300 * 1024))
        huge = await client.post("/webhooks/stripe", content=b"x" * (2 * 1024 * 1024))
    assert large.status_code == 400, "read, then refused for its signature"
    _assert_our_413(huge, 1024 * 1024)


async def test_an_order_with_too_many_or_too_long_settings_is_a_422_naming_the_field() -> None:
    token = mint_token(DEVELOPMENT_JWT_SECRET, sub="alice", email="alice@example.test")
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "limits-0001"}
    base = {"game_id": "minecraft-paper", "plan_id": "standard", "server_name": "w"}
    async with _client(order_app()) as client:
        many = await client.post(
            "/orders", json={**base, "settings": {f"K{n}": "v" for n in range(33)}}, headers=headers
        )
        long_name = await client.post("/orders", json={**base, "settings": {"K" * 65: "v"}}, headers=headers)
    for response in (many, long_name):
        assert response.status_code == 422
        assert response.json()["detail"][0]["field"].startswith("settings")


async def test_an_unknown_method_token_is_one_metric_label_not_one_per_token() -> None:
    async with _client(order_app()) as client:
        for token in ("BREW", "SPAM1", "SPAM2"):
            await client.request(token, "/catalog")
    labels = {
        sample.labels["method"]
        for metric in REGISTRY.collect()
        if metric.name == "http_requests"
        for sample in metric.samples
    }
    assert "OTHER" in labels and not labels & {"BREW", "SPAM1", "SPAM2"}


async def test_a_customer_past_their_budget_of_stripe_calls_gets_a_429_and_others_are_not_touched() -> None:
    """Finding 10: every POST /checkout-sessions and status check was a live Stripe call, with no limit."""
    from payment_service.config import Settings as PaymentSettings

    app = payment_app(PaymentSettings(STRIPE_CALLS_PER_CUSTOMER_PER_MINUTE=3))
    greedy = {"Authorization": f"Bearer {mint_token(DEVELOPMENT_JWT_SECRET, sub='greedy')}"}
    other = {"Authorization": f"Bearer {mint_token(DEVELOPMENT_JWT_SECRET, sub='other')}"}
    async with _client(app) as client:
        answers = [
            (await client.get("/checkout-sessions/cs_test_nope/status", headers=greedy)).status_code for _ in range(5)
        ]
        others = (await client.get("/checkout-sessions/cs_test_nope/status", headers=other)).status_code
    assert answers[:3] != [429] * 3 and answers[3:] == [429, 429]
    assert others != 429
