"""Idempotent requests and injected faults: double-click (case 10), lost answers (case 11), retries."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import stripe

from stripe_fake.testing import FakeStripeControl, FakeStripeServer, wait_until

pytestmark = pytest.mark.contract

Params = Callable[..., Any]  # SDK params are TypedDicts; the factory builds plain dicts


def test_same_key_same_params_replays_without_side_effects(
    client: stripe.StripeClient, params_for: Params, control: FakeStripeControl
) -> None:
    """Case 10: double-clicking "Pay" gives one session; the replay is flagged."""
    params = params_for("ord_10")
    options: Any = {"idempotency_key": "checkout-session:ord_10:1"}
    first = client.v1.checkout.sessions.create(params=params, options=options)
    second = client.v1.checkout.sessions.create(params=params, options=options)
    assert second.id == first.id
    assert second.client_secret == first.client_secret
    assert first.last_response is not None and second.last_response is not None
    assert "idempotent-replayed" not in first.last_response.headers
    assert second.last_response.headers["idempotent-replayed"] == "true"
    assert second.last_response.headers["original-request"] == first.last_response.request_id
    assert second.last_response.idempotency_key == "checkout-session:ord_10:1"
    assert len(control.sessions(order_id="ord_10")) == 1


def test_same_key_different_params_is_idempotency_error(client: stripe.StripeClient, params_for: Params) -> None:
    """Case 10: a retry with a recomputed ``expires_at`` is refused with Stripe's exact message."""
    key = "checkout-session:ord_mismatch:1"
    params = params_for("ord_mismatch")
    client.v1.checkout.sessions.create(params=params, options={"idempotency_key": key})
    changed: Any = dict(params, expires_at=params["expires_at"] + 60)
    with pytest.raises(stripe.IdempotencyError) as info:
        client.v1.checkout.sessions.create(params=changed, options={"idempotency_key": key})
    assert info.value.http_status == 400
    assert info.value.json_body == {
        "error": {
            "message": "Keys for idempotent requests can only be used with the same parameters they were "
            f"first used with. Try using a key other than '{key}' if you meant to execute a different "
            "request.",
            "type": "idempotency_error",
        }
    }


def test_keys_are_scoped_per_api_key(
    fake_server: FakeStripeServer, params_for: Params, control: FakeStripeControl
) -> None:
    one = stripe.StripeClient("sk_test_one", base_addresses={"api": fake_server.url})
    two = stripe.StripeClient("sk_test_two", base_addresses={"api": fake_server.url})
    a = one.v1.checkout.sessions.create(params=params_for(), options={"idempotency_key": "shared"})
    b = two.v1.checkout.sessions.create(params=params_for(), options={"idempotency_key": "shared"})
    assert a.id != b.id


def test_validation_failure_is_not_saved(client: stripe.StripeClient, params_for: Params) -> None:
    """A 400 may be fixed and retried under the same key."""
    key = "checkout-session:ord_fix:1"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.checkout.sessions.create(
            params=params_for("ord_fix", ui_mode="embedded"), options={"idempotency_key": key}
        )
    session = client.v1.checkout.sessions.create(params=params_for("ord_fix"), options={"idempotency_key": key})
    assert session.status == "open"


def test_expire_is_replayed_not_repeated(
    client: stripe.StripeClient, params_for: Params, control: FakeStripeControl
) -> None:
    session = client.v1.checkout.sessions.create(params=params_for("ord_exp"))
    first = client.v1.checkout.sessions.expire(session.id, options={"idempotency_key": "expire-1"})
    again = client.v1.checkout.sessions.expire(session.id, options={"idempotency_key": "expire-1"})
    assert first.status == again.status == "expired"
    assert again.last_response is not None and again.last_response.headers["idempotent-replayed"] == "true"
    assert len(control.events(type="checkout.session.expired")) == 1


def test_dropped_answer_then_retry_with_same_key_creates_one_session(
    client: stripe.StripeClient, params_for: Params, control: FakeStripeControl
) -> None:
    """Case 11: the create is committed but the answer is lost; the retry replays it."""
    control.add_fault(path_prefix="/v1/checkout/sessions", method="POST", drop_connection=True, after_commit=True)
    params = params_for("ord_11")
    key = "checkout-session:ord_11:1"
    with pytest.raises(stripe.APIConnectionError):
        client.v1.checkout.sessions.create(params=params, options={"idempotency_key": key})
    assert len(control.sessions(order_id="ord_11")) == 1
    session = client.v1.checkout.sessions.create(params=params, options={"idempotency_key": key})
    assert session.last_response is not None
    assert session.last_response.headers["idempotent-replayed"] == "true"
    assert [s["id"] for s in control.sessions(order_id="ord_11")] == [session.id]


def test_500_after_commit_then_retry_replays_the_success(
    client: stripe.StripeClient, params_for: Params, control: FakeStripeControl
) -> None:
    control.add_fault(path_prefix="/v1/checkout/sessions", method="POST", status=500, after_commit=True)
    params = params_for("ord_500ac")
    with pytest.raises(stripe.APIError):
        client.v1.checkout.sessions.create(params=params, options={"idempotency_key": "k-500ac"})
    session = client.v1.checkout.sessions.create(params=params, options={"idempotency_key": "k-500ac"})
    assert [s["id"] for s in control.sessions(order_id="ord_500ac")] == [session.id]


@pytest.mark.parametrize("fault", [{"status": 500}, {"drop_connection": True}])
def test_fault_before_processing_creates_nothing(
    client: stripe.StripeClient, params_for: Params, control: FakeStripeControl, fault: dict[str, Any]
) -> None:
    control.add_fault(path_prefix="/v1/checkout/sessions", method="POST", **fault)
    params = params_for("ord_pre")
    with pytest.raises((stripe.APIError, stripe.APIConnectionError)):
        client.v1.checkout.sessions.create(params=params, options={"idempotency_key": "k-pre"})
    assert control.sessions(order_id="ord_pre") == []
    session = client.v1.checkout.sessions.create(params=params, options={"idempotency_key": "k-pre"})
    assert session.last_response is not None
    assert "idempotent-replayed" not in session.last_response.headers
    assert len(control.sessions(order_id="ord_pre")) == 1


def test_sdk_network_retries_reuse_the_key(
    fake_server: FakeStripeServer, params_for: Params, control: FakeStripeControl
) -> None:
    """With ``max_network_retries=2`` the SDK retries a 500 with the same key: one session."""
    retrying = stripe.StripeClient("sk_test_retry", base_addresses={"api": fake_server.url}, max_network_retries=2)
    control.add_fault(path_prefix="/v1/checkout/sessions", method="POST", status=500, times=1, after_commit=True)
    session = retrying.v1.checkout.sessions.create(params=params_for("ord_retry"))
    assert [s["id"] for s in control.sessions(order_id="ord_retry")] == [session.id]
    faults = control.http.get("/_fake/faults").json()["data"]
    assert faults == []


def test_concurrent_request_with_same_key_gets_409_then_replay(
    fake_server: FakeStripeServer, params_for: Params, control: FakeStripeControl
) -> None:
    """A key whose first request is still executing is "in use" (retryable 409), never executed twice."""
    control.add_fault(path_prefix="/v1/checkout/sessions", method="POST", delay_seconds=0.5)
    params = params_for("ord_race")
    client = stripe.StripeClient("sk_test_contract", base_addresses={"api": fake_server.url})
    results: list[Any] = []

    def create() -> None:
        results.append(client.v1.checkout.sessions.create(params=params, options={"idempotency_key": "k-race"}))

    slow = threading.Thread(target=create)
    slow.start()
    # the fault is consumed (and removed) when the first request reaches it, key already in flight
    wait_until(lambda: control.http.get("/_fake/faults").json()["data"] == [], message="first request")
    with pytest.raises(stripe.APIError) as info:
        client.v1.checkout.sessions.create(params=params, options={"idempotency_key": "k-race"})
    assert info.value.http_status == 409
    body: Any = info.value.json_body
    assert body["error"]["code"] == "idempotency_key_in_use"
    slow.join(5)
    assert len(results) == 1
    replay = client.v1.checkout.sessions.create(params=params, options={"idempotency_key": "k-race"})
    assert replay.id == results[0].id
    assert len(control.sessions(order_id="ord_race")) == 1


def test_fault_can_target_gets_and_be_unlimited(
    client: stripe.StripeClient, params_for: Params, control: FakeStripeControl
) -> None:
    session = client.v1.checkout.sessions.create(params=params_for())
    control.add_fault(path_prefix="/v1/checkout/sessions/", method="GET", status=503, times=None)
    for _ in range(3):
        with pytest.raises(stripe.APIError) as info:
            client.v1.checkout.sessions.retrieve(session.id)
        assert info.value.http_status == 503
    assert control.http.delete("/_fake/faults").status_code == 200
    assert client.v1.checkout.sessions.retrieve(session.id).id == session.id


def test_delay_fault_delays(client: stripe.StripeClient, params_for: Params, control: FakeStripeControl) -> None:
    session = client.v1.checkout.sessions.create(params=params_for())
    control.add_fault(path_prefix="/v1/checkout/sessions/", method="GET", delay_seconds=0.3)
    started = time.monotonic()
    client.v1.checkout.sessions.retrieve(session.id)
    assert time.monotonic() - started >= 0.3


def test_fault_needs_an_effect(fake_server: FakeStripeServer, control: FakeStripeControl) -> None:
    response = httpx.post(f"{fake_server.url}/_fake/faults", json={"path_prefix": "/v1"})
    assert response.status_code == 422
