"""Creating Checkout Sessions: response shape (case 8), dahlia ui_mode guard (case 9), validation."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
import stripe

from stripe_fake.testing import FakeStripeControl

pytestmark = pytest.mark.contract

Params = Callable[..., Any]  # SDK params are TypedDicts; the factory builds plain dicts


def test_create_embedded_session_shape(
    client: stripe.StripeClient, params_for: Params, control: FakeStripeControl
) -> None:
    """Case 8: what the payment service sends, and what it gets back."""
    now = control.now()
    params = params_for("ord_8")
    session = client.v1.checkout.sessions.create(params=params, options={"idempotency_key": "checkout-session:ord_8:1"})
    assert session.object == "checkout.session"
    assert isinstance(session, stripe.checkout.Session)
    assert session.id.startswith("cs_test_")
    assert session.client_secret is not None and session.client_secret.startswith(f"{session.id}_secret_")
    assert session.url is None
    assert (session.status, session.payment_status, session.mode, session.ui_mode) == (
        "open",
        "unpaid",
        "payment",
        "embedded_page",
    )
    assert session.payment_intent is None
    assert (session.amount_subtotal, session.amount_total, session.currency) == (1500, 1500, "eur")
    assert session.metadata is not None and session.metadata.to_dict() == {"serverOrderId": "ord_8"}
    assert session.client_reference_id == "ord_8"
    assert session.customer_email == "a@example.test"
    assert session.customer_details is None
    assert session.return_url == "https://app.example.test/checkout/return?session_id={CHECKOUT_SESSION_ID}"
    assert session.redirect_on_completion == "always"
    assert session.success_url is None and session.cancel_url is None
    assert session.expires_at == params["expires_at"]
    assert now + 1800 <= session.expires_at <= now + 86400
    assert now <= session.created <= now + 5
    assert session.livemode is False
    assert session.payment_method_types == ["card"]
    assert session.total_details is not None and session.total_details.amount_tax == 0

    stored = control.sessions(order_id="ord_8")
    assert [s["id"] for s in stored] == [session.id]


def test_expires_at_defaults_to_24_hours(client: stripe.StripeClient, params_for: Params) -> None:
    params = params_for()
    del params["expires_at"]
    session = client.v1.checkout.sessions.create(params=params)
    assert session.expires_at == session.created + 86400


def test_retrieve_with_expanded_line_items(client: stripe.StripeClient, params_for: Params) -> None:
    """The fulfilment call: ``retrieve(expand=["line_items"])`` (sent as ``expand[0]``)."""
    params = params_for(
        line_items=[
            {
                "price_data": {
                    "currency": "eur",
                    "unit_amount": 1500,
                    "product_data": {"name": "Game server – 30 days"},
                },
                "quantity": 2,
            },
            {
                "price_data": {
                    "currency": "eur",
                    "unit_amount_decimal": "99.5",
                    "product_data": {"name": "Backup slot"},
                },
                "quantity": 2,
            },
        ]
    )
    created = client.v1.checkout.sessions.create(params=params)
    assert created.amount_total == 3000 + 199
    session = client.v1.checkout.sessions.retrieve(created.id, params={"expand": ["line_items"]})
    assert session.line_items is not None
    items = session.line_items.data
    assert session.line_items.has_more is False
    assert session.line_items.url == f"/v1/checkout/sessions/{created.id}/line_items"
    assert [(i.description, i.quantity, i.amount_total) for i in items] == [
        ("Game server – 30 days", 2, 3000),
        ("Backup slot", 2, 199),
    ]
    first = items[0]
    assert first.object == "item" and first.id.startswith("li_")
    assert first.price is not None
    assert (first.price.object, first.price.type, first.price.unit_amount) == ("price", "one_time", 1500)
    assert first.price.product.startswith("prod_")  # type: ignore[union-attr]
    listed = client.v1.checkout.sessions.line_items.list(created.id, params={"limit": 1})
    assert [i.id for i in listed.data] == [first.id] and listed.has_more is True


@pytest.mark.parametrize("ui_mode", ["embedded", "hosted", "custom", "nonsense"])
def test_pre_dahlia_ui_modes_are_rejected(client: stripe.StripeClient, params_for: Params, ui_mode: str) -> None:
    """Case 9: ``ui_mode=embedded`` (and the other renamed values) fail on dahlia+ API versions."""
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.checkout.sessions.create(params=params_for(ui_mode=ui_mode))
    assert info.value.http_status == 400
    assert info.value.param == "ui_mode"
    assert "embedded_page" in str(info.value.user_message)


def _without(params: dict[str, Any], *path: str | int) -> dict[str, Any]:
    out = copy.deepcopy(params)
    node: Any = out
    for part in path[:-1]:
        node = node[part]
    del node[path[-1]]
    return out


def _with(params: dict[str, Any], value: Any, *path: str | int) -> dict[str, Any]:
    out = copy.deepcopy(params)
    node: Any = out
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return out


INVALID_CASES: list[tuple[str, Callable[[dict[str, Any], int], dict[str, Any]], str]] = [
    ("mode missing", lambda p, _n: _without(p, "mode"), "mode"),
    ("mode setup", lambda p, _n: _with(p, "setup", "mode"), "mode"),
    ("mode unknown", lambda p, _n: _with(p, "donation", "mode"), "mode"),
    ("line_items missing", lambda p, _n: _without(p, "line_items"), "line_items"),
    ("too many line items", lambda p, _n: _with(p, p["line_items"] * 101, "line_items"), "line_items"),
    ("no price or price_data", lambda p, _n: _without(p, "line_items", 0, "price_data"), "line_items[0][price_data]"),
    (
        "unknown price id",
        lambda p, _n: _with(_without(p, "line_items", 0, "price_data"), "price_123", "line_items", 0, "price"),
        "line_items[0][price]",
    ),
    (
        "no currency",
        lambda p, _n: _without(p, "line_items", 0, "price_data", "currency"),
        "line_items[0][price_data][currency]",
    ),
    (
        "no product name",
        lambda p, _n: _without(p, "line_items", 0, "price_data", "product_data", "name"),
        "line_items[0][price_data][product_data][name]",
    ),
    (
        "no product_data",
        lambda p, _n: _without(p, "line_items", 0, "price_data", "product_data"),
        "line_items[0][price_data][product_data]",
    ),
    (
        "no unit_amount",
        lambda p, _n: _without(p, "line_items", 0, "price_data", "unit_amount"),
        "line_items[0][price_data][unit_amount]",
    ),
    (
        "negative unit_amount",
        lambda p, _n: _with(p, -1, "line_items", 0, "price_data", "unit_amount"),
        "line_items[0][price_data][unit_amount]",
    ),
    (
        "non-integer unit_amount",
        lambda p, _n: _with(p, "15.00", "line_items", 0, "price_data", "unit_amount"),
        "line_items[0][price_data][unit_amount]",
    ),
    ("quantity 0", lambda p, _n: _with(p, 0, "line_items", 0, "quantity"), "line_items[0][quantity]"),
    ("quantity missing", lambda p, _n: _without(p, "line_items", 0, "quantity"), "line_items[0][quantity]"),
    ("return_url missing", lambda p, _n: _without(p, "return_url"), "return_url"),
    ("success_url with embedded_page", lambda p, _n: _with(p, "https://app/ok", "success_url"), "success_url"),
    ("cancel_url with embedded_page", lambda p, _n: _with(p, "https://app/no", "cancel_url"), "cancel_url"),
    ("expires_at under 30 min", lambda p, n: _with(p, n + 1700, "expires_at"), "expires_at"),
    ("expires_at past", lambda p, n: _with(p, n - 10, "expires_at"), "expires_at"),
    ("expires_at over 24 h", lambda p, n: _with(p, n + 86400 + 100, "expires_at"), "expires_at"),
    ("metadata 51 keys", lambda p, _n: _with(p, {f"k{i}": "v" for i in range(51)}, "metadata"), "metadata"),
    ("metadata key 41 chars", lambda p, _n: _with(p, {"k" * 41: "v"}, "metadata"), "metadata"),
    ("metadata key with bracket", lambda p, _n: _with(p, {"a[b]": "v"}, "metadata"), "metadata"),
    ("metadata value 501 chars", lambda p, _n: _with(p, {"k": "v" * 501}, "metadata"), "metadata[k]"),
    (
        "payment_intent_data metadata 41-char key",
        lambda p, _n: _with(p, {"x" * 41: "v"}, "payment_intent_data", "metadata"),
        "payment_intent_data[metadata]",
    ),
    (
        "payment_method_types removed in endive",
        lambda p, _n: _with(p, ["card"], "payment_method_types"),
        "payment_method_types",
    ),
    ("unknown line item field", lambda p, _n: _with(p, "x", "line_items", 0, "colour"), "line_items[0][colour]"),
    ("bad customer_email", lambda p, _n: _with(p, "not-an-email", "customer_email"), "customer_email"),
    ("relative return_url", lambda p, _n: _with(p, "/checkout/return", "return_url"), "return_url"),
]


@pytest.mark.parametrize(("case", "mutate", "param"), INVALID_CASES, ids=[c[0] for c in INVALID_CASES])
def test_validation_failures_name_the_param(
    client: stripe.StripeClient,
    params_for: Params,
    control: FakeStripeControl,
    case: str,
    mutate: Callable[[dict[str, Any], int], dict[str, Any]],
    param: str,
) -> None:
    params: Any = mutate(params_for(), control.now())
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.checkout.sessions.create(params=params)
    assert info.value.http_status == 400, case
    assert info.value.param == param, info.value.user_message
    body: Any = info.value.json_body
    assert body["error"]["type"] == "invalid_request_error"
    assert control.sessions() == []


def test_expiry_window_uses_the_fake_clock(
    client: stripe.StripeClient, control: FakeStripeControl, params_for: Params
) -> None:
    """``expires_at`` is checked against the fake's clock, not the caller's."""
    control.advance(7 * 24 * 3600)
    now = control.now()
    ok = client.v1.checkout.sessions.create(params=params_for(expires_at=now + 1805))
    assert ok.expires_at == now + 1805
    ok = client.v1.checkout.sessions.create(params=params_for(expires_at=now + 86395))
    assert ok.created >= now
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.checkout.sessions.create(params=params_for(expires_at=now - 7 * 24 * 3600 + 3600))
    assert info.value.param == "expires_at"


def test_redirect_never_needs_no_return_url(client: stripe.StripeClient, params_for: Params) -> None:
    params: Any = _without(params_for(redirect_on_completion="never"), "return_url")
    session = client.v1.checkout.sessions.create(params=params)
    assert session.return_url is None and session.redirect_on_completion == "never"


def test_hosted_page_has_url_and_no_client_secret(client: stripe.StripeClient, params_for: Params) -> None:
    params: Any = _without(params_for(ui_mode="hosted_page", success_url="https://app/ok"), "return_url")
    session = client.v1.checkout.sessions.create(params=params)
    assert session.client_secret is None
    assert session.url is not None and session.url.startswith("https://checkout.stripe.com/")


def test_metadata_is_kept_on_session_and_payment_intent_data(
    client: stripe.StripeClient, params_for: Params, control: FakeStripeControl
) -> None:
    session = client.v1.checkout.sessions.create(
        params=params_for("ord_meta", metadata={"serverOrderId": "ord_meta", "blank": ""})
    )
    assert session.metadata is not None and session.metadata.to_dict() == {"serverOrderId": "ord_meta"}
    stored = control.http.get(f"/_fake/sessions/{session.id}").json()
    assert stored["payment_intent_data"] == {"metadata": {"serverOrderId": "ord_meta"}}


def test_list_sessions_newest_first_with_filters(
    client: stripe.StripeClient, params_for: Params, control: FakeStripeControl
) -> None:
    first = client.v1.checkout.sessions.create(params=params_for("ord_a"))
    second = client.v1.checkout.sessions.create(params=params_for("ord_b"))
    client.v1.checkout.sessions.expire(first.id)
    listed = client.v1.checkout.sessions.list(params={"limit": 10})
    assert [s.id for s in listed.data] == [second.id, first.id]
    open_only = client.v1.checkout.sessions.list(params={"status": "open"})
    assert [s.id for s in open_only.data] == [second.id]
    page = client.v1.checkout.sessions.list(params={"limit": 1})
    assert page.has_more is True
    ids = [s.id for s in page.auto_paging_iter()]
    assert ids == [second.id, first.id]


async def test_async_create_and_retrieve(client: stripe.StripeClient, params_for: Params) -> None:
    """The payment service uses the ``*_async`` calls (HTTPX client under the SDK)."""
    created = await client.v1.checkout.sessions.create_async(
        params=params_for("ord_async"), options={"idempotency_key": "checkout-session:ord_async:1"}
    )
    again = await client.v1.checkout.sessions.create_async(
        params=params_for("ord_async", expires_at=created.expires_at),
        options={"idempotency_key": "checkout-session:ord_async:1"},
    )
    assert again.id == created.id
    fetched = await client.v1.checkout.sessions.retrieve_async(created.id, params={"expand": ["line_items"]})
    assert fetched.line_items is not None and fetched.line_items.data[0].amount_total == 1500
