"""Transport contract: auth, form decoding over the wire, Request-Id, error bodies, unknown routes."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import stripe

from stripe_fake.testing import FakeStripeControl, FakeStripeServer

pytestmark = pytest.mark.contract

AUTH = {"Authorization": "Bearer sk_test_contract"}


def test_missing_key_is_401_with_stripe_body(fake_server: FakeStripeServer, control: FakeStripeControl) -> None:
    response = httpx.get(f"{fake_server.url}/v1/checkout/sessions/cs_test_x")
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["message"].startswith("You did not provide an API key.")
    assert response.headers["request-id"].startswith("req_")


@pytest.mark.parametrize("key", ["sk_live_123456789012", "pk_test_123456789012", "sk_test_"])
def test_non_test_secret_key_is_rejected_by_the_sdk(fake_server: FakeStripeServer, key: str) -> None:
    client = stripe.StripeClient(key, base_addresses={"api": fake_server.url})
    with pytest.raises(stripe.AuthenticationError) as info:
        client.v1.checkout.sessions.retrieve("cs_test_x")
    assert info.value.http_status == 401
    assert "Invalid API Key provided" in str(info.value.user_message)


def test_basic_auth_with_key_as_user_is_accepted(fake_server: FakeStripeServer, control: FakeStripeControl) -> None:
    token = base64.b64encode(b"sk_test_basic:").decode()
    response = httpx.get(
        f"{fake_server.url}/v1/checkout/sessions/cs_test_x", headers={"Authorization": f"Basic {token}"}
    )
    assert response.status_code == 404


def test_missing_session_is_404_resource_missing(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.checkout.sessions.retrieve("cs_test_x")
    error = info.value
    assert (error.http_status, error.code, error.param) == (404, "resource_missing", "session")
    assert error.json_body == {
        "error": {
            "code": "resource_missing",
            "doc_url": "https://stripe.com/docs/error-codes/resource-missing",
            "message": "No such checkout.session: 'cs_test_x'",
            "param": "session",
            "type": "invalid_request_error",
        }
    }
    assert error.request_id is not None and error.request_id.startswith("req_")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/coupons"),
        ("DELETE", "/v1/checkout/sessions/cs_test_x"),
        ("GET", "/v1/checkout/sessions/cs_test_x/expire"),
        ("POST", "/v1/payment_intents/pi_x"),
    ],
)
def test_unknown_route_or_method_is_stripe_404(
    fake_server: FakeStripeServer, control: FakeStripeControl, method: str, path: str
) -> None:
    response = httpx.request(method, f"{fake_server.url}{path}", headers=AUTH)
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["message"].startswith(f"Unrecognized request URL ({method}: {path}).")
    assert response.headers["request-id"].startswith("req_")


def test_every_answer_is_json_with_request_id(client: stripe.StripeClient, params_for: Callable[..., Any]) -> None:
    session = client.v1.checkout.sessions.create(params=params_for())
    response = session.last_response
    assert response is not None
    assert response.headers["content-type"].startswith("application/json")
    assert response.request_id is not None and response.request_id.startswith("req_")
    assert response.headers["stripe-version"] == stripe.api_version


def test_percent_encoded_form_body_over_the_wire(fake_server: FakeStripeServer, control: FakeStripeControl) -> None:
    """Brackets percent-encoded, UTF-8 names, literal template braces: all decoded as Stripe does."""
    now = control.now()
    body = (
        "mode=payment&ui_mode=embedded_page"
        "&line_items%5B0%5D%5Bprice_data%5D%5Bcurrency%5D=eur"
        "&line_items%5B0%5D%5Bprice_data%5D%5Bunit_amount%5D=700"
        "&line_items%5B0%5D%5Bprice_data%5D%5Bproduct_data%5D%5Bname%5D=Server+%E2%80%93+7+days"
        "&line_items%5B0%5D%5Bquantity%5D=3"
        "&metadata%5BserverOrderId%5D=ord_enc"
        "&return_url=https%3A%2F%2Fapp%2Fr%3Fsession_id%3D%7BCHECKOUT_SESSION_ID%7D"
        f"&expires_at={now + 3600}&expand%5B0%5D=line_items"
    )
    response = httpx.post(
        f"{fake_server.url}/v1/checkout/sessions",
        content=body,
        headers={**AUTH, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200, response.text
    session = response.json()
    assert session["amount_total"] == 2100
    assert session["metadata"] == {"serverOrderId": "ord_enc"}
    assert session["return_url"] == "https://app/r?session_id={CHECKOUT_SESSION_ID}"
    item = session["line_items"]["data"][0]
    assert (item["description"], item["quantity"], item["price"]["unit_amount"]) == ("Server – 7 days", 3, 700)


def test_control_api_needs_no_auth(fake_server: FakeStripeServer, control: FakeStripeControl) -> None:
    response = httpx.get(f"{fake_server.url}/_fake/clock")
    assert response.status_code == 200
    assert response.headers["request-id"].startswith("req_")
    assert response.json()["offset_seconds"] == 0
