"""The Stripe SDK on the kit's HTTP/1.1 client (``adapters/stripe_http.py``), against a loopback server that
answers as Stripe's API does: the SDK's answers, errors and retries are what they were on httpx."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import stripe

from payment_service.adapters.stripe_gateway import StripeGateway, is_not_found

pytestmark = pytest.mark.component

SESSION = {"id": "cs_test_1", "object": "checkout.session", "status": "open", "client_secret": "cs_secret"}


class FakeStripe:
    """Reads one request per connection turn and answers by path; remembers what it received."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head = await reader.readuntil(b"\r\n\r\n") if not reader.at_eof() else b""
            if not head:
                break
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ")
            payload: dict[str, Any]
            headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            self.requests.append((method, target, headers, body))
            if target.startswith("/v1/checkout/sessions/cs_missing"):
                status, payload = (
                    404,
                    {
                        "error": {
                            "type": "invalid_request_error",
                            "code": "resource_missing",
                            "message": "No such checkout.session",
                        }
                    },
                )
            else:
                status, payload = 200, SESSION
            data = json.dumps(payload).encode()
            writer.write(
                f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nRequest-Id: req_{len(self.requests)}\r\n"
                f"Content-Length: {len(data)}\r\n\r\n".encode()
                + data
            )
            await writer.drain()
        writer.close()


@pytest.fixture
async def fake_stripe() -> AsyncIterator[tuple[FakeStripe, str]]:
    fake = FakeStripe()
    server = await asyncio.start_server(fake.serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield fake, f"http://127.0.0.1:{port}"
    server.close()


async def test_a_session_is_created_and_read_back_on_one_kept_alive_connection(
    fake_stripe: tuple[FakeStripe, str],
) -> None:
    fake, base = fake_stripe
    gateway = StripeGateway("sk_test_x", api_base=base, max_network_retries=0)
    try:
        created = await gateway.create_checkout_session({"mode": "payment"}, idempotency_key="order-1:1")
        again = await gateway.retrieve_checkout_session("cs_test_1")
    finally:
        await gateway.aclose()
    assert (created.id, created.client_secret, again.status) == ("cs_test_1", "cs_secret", "open")
    (method, target, headers, body), second = fake.requests
    assert (method, target, body) == ("POST", "/v1/checkout/sessions", b"mode=payment")
    assert headers["idempotency-key"] == "order-1:1"
    assert headers["authorization"] == "Bearer sk_test_x"
    assert headers["content-type"] == "application/x-www-form-urlencoded"
    assert second[0] == "GET" and second[1].startswith("/v1/checkout/sessions/cs_test_1?")


async def test_stripes_error_answer_is_the_sdks_error_class(fake_stripe: tuple[FakeStripe, str]) -> None:
    _, base = fake_stripe
    gateway = StripeGateway("sk_test_x", api_base=base, max_network_retries=0)
    try:
        with pytest.raises(stripe.InvalidRequestError) as raised:
            await gateway.retrieve_checkout_session("cs_missing")
    finally:
        await gateway.aclose()
    assert is_not_found(raised.value)
    assert raised.value.request_id == "req_1"


async def test_no_answer_is_a_connection_error_the_sdk_retries() -> None:
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)  # hangs up at once
    port = server.sockets[0].getsockname()[1]
    gateway = StripeGateway("sk_test_x", api_base=f"http://127.0.0.1:{port}", max_network_retries=1)
    try:
        with pytest.raises(stripe.APIConnectionError) as raised:
            await gateway.retrieve_checkout_session("cs_test_1")
    finally:
        await gateway.aclose()
        server.close()
    assert raised.value.should_retry
