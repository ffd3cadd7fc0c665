"""The embedded Checkout the browser uses: the Stripe.js stand-in, the iframe's page and the test payments it
offers, each completing the session through the stand-in's own payment logic (state, events, redirect)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import stripe
from stripe_fake_support import BillingKit

from stripe_fake.config import FakeConfig
from stripe_fake.testing import FakeStripeControl, FakeStripeServer

pytestmark = pytest.mark.contract

Params = Callable[..., Any]
RETURN_URL = "https://shop.example/checkout/return?session_id={CHECKOUT_SESSION_ID}"


@pytest.fixture
def http(fake_server: FakeStripeServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake_server.url, timeout=10) as session:
        yield session


def _session(client: stripe.StripeClient, params_for: Params, order_id: str) -> stripe.checkout.Session:
    return client.v1.checkout.sessions.create(params=params_for(order_id, return_url=RETURN_URL))


def _confirm(http: httpx.Client, secret: str, method: str, **extra: Any) -> httpx.Response:
    return http.post("/embedded/confirm", json={"client_secret": secret, "method": method, **extra})


def test_the_script_offers_stripe_js_embedded_checkout_api(http: httpx.Client) -> None:
    script = http.get("/v3/")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("application/javascript")
    for name in ("createEmbeddedCheckoutPage", "initEmbeddedCheckout", "mount", "unmount", "destroy", "window.Stripe"):
        assert name in script.text
    page = http.get("/embedded/checkout")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "3-D Secure" in page.text and "declined" in page.text


def test_the_form_shows_line_items_and_total(
    http: httpx.Client, client: stripe.StripeClient, params_for: Params, control: FakeStripeControl
) -> None:
    session = _session(client, params_for, "ord_view")
    view = http.post("/embedded/session", json={"client_secret": session.client_secret})
    assert view.status_code == 200
    body = view.json()
    assert body["id"] == session.id and body["status"] == "open"
    assert body["amount_total"] == session.amount_total and body["currency"] == session.currency
    assert [item["amount"] for item in body["line_items"]] == [session.amount_total]
    wrong = http.post("/embedded/session", json={"client_secret": f"{session.id}_secret_forged"})
    assert wrong.status_code == 404


def test_card_pays_and_returns_to_return_url(
    http: httpx.Client, client: stripe.StripeClient, params_for: Params, control: FakeStripeControl
) -> None:
    session = _session(client, params_for, "ord_card")
    answer = _confirm(http, str(session.client_secret), "card", email="buyer@example.test")
    assert answer.status_code == 200
    assert answer.json()["redirect_url"] == f"https://shop.example/checkout/return?session_id={session.id}"
    assert answer.json()["redirect_on_completion"] == "always"
    paid = client.v1.checkout.sessions.retrieve(session.id)
    assert (paid.status, paid.payment_status) == ("complete", "paid")
    assert [e["type"] for e in control.events(session_id=session.id)] == ["checkout.session.completed"]
    again = _confirm(http, str(session.client_secret), "card")
    assert again.status_code == 400  # a complete session takes no second payment


def test_declined_card_stays_open_with_the_decline(
    http: httpx.Client, client: stripe.StripeClient, params_for: Params, control: FakeStripeControl
) -> None:
    session = _session(client, params_for, "ord_declined")
    answer = _confirm(http, str(session.client_secret), "card_declined")
    assert answer.status_code == 402
    assert answer.json()["error"]["code"] == "card_declined"
    assert client.v1.checkout.sessions.retrieve(session.id).status == "open"
    assert control.events(session_id=session.id) == []
    assert _confirm(http, str(session.client_secret), "card").status_code == 200  # another card then works


def test_three_d_secure_asks_first_then_pays_or_fails(
    http: httpx.Client, client: stripe.StripeClient, params_for: Params, control: FakeStripeControl
) -> None:
    session = _session(client, params_for, "ord_3ds")
    secret = str(session.client_secret)
    step = _confirm(http, secret, "card_3ds")
    assert step.status_code == 200 and step.json() == {"next_action": "three_d_secure"}
    assert client.v1.checkout.sessions.retrieve(session.id).status == "open"
    failed = _confirm(http, secret, "card_3ds", authenticated=False)
    assert failed.status_code == 402
    assert failed.json()["error"]["code"] == "payment_intent_authentication_failure"
    assert client.v1.checkout.sessions.retrieve(session.id).status == "open"
    passed = _confirm(http, secret, "card_3ds", authenticated=True)
    assert passed.status_code == 200
    assert client.v1.checkout.sessions.retrieve(session.id).payment_status == "paid"


def test_delayed_method_waits_for_the_control_api_when_configured_so(
    http: httpx.Client, client: stripe.StripeClient, params_for: Params, control: FakeStripeControl
) -> None:
    """The session-wide test server settles after 10 s: long after this test, which settles it itself."""
    session = _session(client, params_for, "ord_sepa_manual")
    answer = _confirm(http, str(session.client_secret), "sepa_debit_succeeds")
    assert answer.status_code == 200 and answer.json()["payment_status"] == "unpaid"
    control.settle(session.id, "succeeded")
    assert client.v1.checkout.sessions.retrieve(session.id).payment_status == "paid"


@pytest.mark.parametrize(("method", "event"), [("sepa_debit_succeeds", "succeeded"), ("sepa_debit_fails", "failed")])
def test_delayed_method_settles_by_itself_later(params_for: Params, method: str, event: str) -> None:
    config = FakeConfig(embedded_settle_seconds=0.3, expiry_sweep_seconds=60.0)
    with FakeStripeServer(config) as server, httpx.Client(base_url=server.url, timeout=10) as http:
        control = FakeStripeControl(server.url)
        sdk = stripe.StripeClient("sk_test_embedded", base_addresses={"api": server.url})
        session = sdk.v1.checkout.sessions.create(params=params_for("ord_sepa", return_url=RETURN_URL))
        answer = _confirm(http, str(session.client_secret), method)
        assert answer.status_code == 200
        assert sdk.v1.checkout.sessions.retrieve(session.id).payment_status == "unpaid"
        wanted = f"checkout.session.async_payment_{event}"
        deadline = time.monotonic() + 10
        while wanted not in [e["type"] for e in control.events(session_id=session.id)]:
            assert time.monotonic() < deadline, f"no {wanted}"
            time.sleep(0.05)
        control.close()


def test_a_subscription_shows_how_often_it_bills(
    http: httpx.Client, client: stripe.StripeClient, billing: BillingKit, params_for: Params
) -> None:
    """A recurring line item carries its price's interval, so the form says "€15.00 per month" (and after a
    trial "then €42.00 every 3 months"); a one-time item carries none."""
    monthly = client.v1.checkout.sessions.create(billing.session_params(billing.price(1500)))
    view = http.post("/embedded/session", json={"client_secret": monthly.client_secret}).json()
    assert view["mode"] == "subscription" and view["amount_total"] == 1500
    assert [(i["amount"], i["recurring"]) for i in view["line_items"]] == [
        (1500, {"interval": "month", "interval_count": 1})
    ]
    assert view["trial_period_days"] is None and view["trial_end"] is None

    product = client.v1.products.create({"name": "Game server Standard"})
    quarterly = client.v1.prices.create(
        {
            "product": product.id,
            "currency": "eur",
            "unit_amount": 4200,
            "recurring": {"interval": "month", "interval_count": 3},
        }
    )
    trial = client.v1.checkout.sessions.create(
        billing.session_params(quarterly.id, subscription_data={"trial_period_days": 14})
    )
    view = http.post("/embedded/session", json={"client_secret": trial.client_secret}).json()
    assert view["amount_total"] == 0 and view["trial_period_days"] == 14
    assert [i["recurring"] for i in view["line_items"]] == [{"interval": "month", "interval_count": 3}]

    once = _session(client, params_for, "ord_once")
    view = http.post("/embedded/session", json={"client_secret": once.client_secret}).json()
    assert [i["recurring"] for i in view["line_items"]] == [None]
