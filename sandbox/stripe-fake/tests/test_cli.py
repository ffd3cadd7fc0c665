"""``python -m stripe_fake`` as a real process: env configuration, start endpoint, quiet output."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

import httpx
import pytest
import stripe

from stripe_fake.testing import WebhookReceiver, wait_until

pytestmark = pytest.mark.contract


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_module_entry_point_serves_with_env_configuration() -> None:
    port = _free_port()
    with WebhookReceiver() as receiver:
        env = {
            **os.environ,
            "STRIPE_FAKE_PORT": str(port),
            "STRIPE_FAKE_WEBHOOK_URL": receiver.url,
            "STRIPE_FAKE_WEBHOOK_SECRET": "whsec_cli",
            "STRIPE_FAKE_WEBHOOK_EVENTS": "checkout.session.completed,checkout.session.expired",
            "STRIPE_FAKE_RETRY_BASE_SECONDS": "0.05",
        }
        process = subprocess.Popen(
            [sys.executable, "-m", "stripe_fake"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        base = f"http://127.0.0.1:{port}"
        try:

            def healthy() -> bool:
                try:
                    return httpx.get(f"{base}/_fake/health", timeout=1).status_code == 200
                except httpx.TransportError:
                    assert process.poll() is None, "stripe-fake exited early"
                    return False

            wait_until(healthy, timeout=20, interval=0.1, message="stripe-fake process")
            [endpoint] = httpx.get(f"{base}/_fake/webhook_endpoints").json()["data"]
            assert endpoint["url"] == receiver.url
            assert endpoint["secrets"] == ["whsec_cli"]
            assert endpoint["enabled_events"] == ["checkout.session.completed", "checkout.session.expired"]

            client = stripe.StripeClient("sk_test_cli", base_addresses={"api": base})
            now = httpx.get(f"{base}/_fake/clock").json()["now"]
            session = client.v1.checkout.sessions.create(
                params={
                    "mode": "payment",
                    "ui_mode": "embedded_page",
                    "line_items": [
                        {
                            "price_data": {"currency": "eur", "unit_amount": 990, "product_data": {"name": "S"}},
                            "quantity": 1,
                        }
                    ],
                    "return_url": "https://app/r?session_id={CHECKOUT_SESSION_ID}",
                    "expires_at": now + 3600,
                }
            )
            client.v1.checkout.sessions.expire(session.id)
            [request] = receiver.wait_for(1)
            assert stripe.Webhook.construct_event(request.body, request.headers["stripe-signature"], "whsec_cli")
        finally:
            process.send_signal(signal.SIGINT)
            stdout, stderr = process.communicate(timeout=15)
    output = (stdout + stderr).decode()
    assert "POST /v1/checkout/sessions" not in output  # no access log
    assert "HTTP/1.1" not in output
