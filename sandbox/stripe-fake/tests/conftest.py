"""Fixtures: one fake server for the session (reset before each test), receivers, SDK clients."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import stripe

from stripe_fake.config import FakeConfig
from stripe_fake.testing import FakeStripeControl, FakeStripeServer, WebhookReceiver

# --import-mode=importlib does not put this folder on sys.path; the billing helpers module lives here.
sys.path.insert(0, str(Path(__file__).parent))

from stripe_fake_support import BillingKit

TEST_SECRET = "whsec_contract_tests"

TEST_CONFIG = FakeConfig(
    webhook_secret=TEST_SECRET,
    retry_base_seconds=0.05,
    retry_cap_seconds=0.2,
    max_attempts=4,
    delivery_timeout_seconds=2.0,
    expiry_sweep_seconds=60.0,  # tests trigger expiry explicitly (clock advance or access)
)


@pytest.fixture(scope="session")
def fake_server() -> Iterator[FakeStripeServer]:
    """The fake as a real HTTP server on a free port."""
    with FakeStripeServer(TEST_CONFIG) as server:
        yield server


@pytest.fixture
def control(fake_server: FakeStripeServer) -> Iterator[FakeStripeControl]:
    """Control-API client; every test starts from empty data."""
    ctl = FakeStripeControl(fake_server.url)
    ctl.reset()
    yield ctl
    ctl.close()


@pytest.fixture
def client(fake_server: FakeStripeServer, control: FakeStripeControl) -> stripe.StripeClient:
    """The official SDK, unmodified, pointed at the fake (no automatic retries)."""
    return stripe.StripeClient("sk_test_contract", base_addresses={"api": fake_server.url})


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    """A webhook receiver answering 200."""
    with WebhookReceiver() as rec:
        yield rec


def session_params(order_id: str = "ord_1", *, now: int | None = None, **overrides: Any) -> dict[str, Any]:
    """The parameters Spawnpoint's payment service sends (reference §0)."""
    params: dict[str, Any] = {
        "mode": "payment",
        "ui_mode": "embedded_page",
        "line_items": [
            {
                "price_data": {
                    "currency": "eur",
                    "unit_amount": 1500,
                    "product_data": {"name": "Game server – 30 days", "metadata": {"plan": "vanilla-4g"}},
                },
                "quantity": 1,
            }
        ],
        "metadata": {"serverOrderId": order_id},
        "client_reference_id": order_id,
        "payment_intent_data": {"metadata": {"serverOrderId": order_id}},
        "return_url": "https://app.example.test/checkout/return?session_id={CHECKOUT_SESSION_ID}",
        "expires_at": (now if now is not None else int(time.time())) + 35 * 60,
        "customer_email": "a@example.test",
    }
    params.update(overrides)
    return params


SessionParams = Callable[..., Any]


@pytest.fixture
def params_for(control: FakeStripeControl) -> SessionParams:
    """Factory of create parameters whose ``expires_at`` is 35 minutes ahead on the fake clock."""

    def build(order_id: str = "ord_1", **overrides: Any) -> Any:
        return session_params(order_id, now=control.now(), **overrides)

    return build


@pytest.fixture
def billing(client: stripe.StripeClient, control: FakeStripeControl) -> BillingKit:
    """Billing helpers bound to the SDK client and the control API."""
    return BillingKit(client, control)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The SDK's async HTTPX client triggers an httpx deprecation warning on every POST; not ours."""
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning"))
