"""Refunds (case 22): idempotent by key, default full amount, over-refund and unknown PaymentIntent."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import stripe

from stripe_fake.testing import FakeStripeControl

pytestmark = pytest.mark.contract

Params = Callable[..., Any]  # SDK params are TypedDicts; the factory builds plain dicts


def _paid_intent(client: stripe.StripeClient, params_for: Params, control: FakeStripeControl, order_id: str) -> str:
    session = client.v1.checkout.sessions.create(params=params_for(order_id))
    paid = control.pay(session.id)
    intent_id: str = paid["payment_intent"]["id"]
    return intent_id


def test_refund_with_order_key_is_created_once(
    client: stripe.StripeClient, params_for: Params, control: FakeStripeControl
) -> None:
    """Case 22: ``refund:<orderId>`` key; rerunning the job replays the same refund."""
    intent_id = _paid_intent(client, params_for, control, "ord_22")
    params: Any = {"payment_intent": intent_id, "metadata": {"serverOrderId": "ord_22"}}
    refund = client.v1.refunds.create(params=params, options={"idempotency_key": "refund:ord_22"})
    assert isinstance(refund, stripe.Refund)
    assert refund.id.startswith("re_")
    assert (refund.status, refund.amount, refund.currency) == ("succeeded", 1500, "eur")
    assert refund.payment_intent == intent_id
    assert refund.charge is not None and str(refund.charge).startswith("ch_")
    assert refund.metadata is not None and refund.metadata.to_dict() == {"serverOrderId": "ord_22"}

    again = client.v1.refunds.create(params=params, options={"idempotency_key": "refund:ord_22"})
    assert again.id == refund.id
    assert again.last_response is not None and again.last_response.headers["idempotent-replayed"] == "true"
    assert [r["id"] for r in control.refunds(order_id="ord_22")] == [refund.id]
    assert client.v1.refunds.retrieve(refund.id).amount == 1500


def test_partial_refunds_then_over_refund(
    client: stripe.StripeClient, params_for: Params, control: FakeStripeControl
) -> None:
    intent_id = _paid_intent(client, params_for, control, "ord_part")
    first = client.v1.refunds.create(params={"payment_intent": intent_id, "amount": 500, "reason": "duplicate"})
    assert (first.amount, first.reason) == (500, "duplicate")
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.refunds.create(params={"payment_intent": intent_id, "amount": 1001})
    assert (info.value.http_status, info.value.param) == (400, "amount")
    assert "greater than unrefunded amount" in str(info.value.user_message)
    rest = client.v1.refunds.create(params={"payment_intent": intent_id})
    assert rest.amount == 1000
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.refunds.create(params={"payment_intent": intent_id})
    assert info.value.code == "charge_already_refunded"
    listed = client.v1.refunds.list(params={"payment_intent": intent_id})
    assert [r.id for r in listed.data] == [rest.id, first.id]


def test_refund_errors(client: stripe.StripeClient, params_for: Params, control: FakeStripeControl) -> None:
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.refunds.create(params={"payment_intent": "pi_unknown"})
    assert (info.value.http_status, info.value.code, info.value.param) == (404, "resource_missing", "payment_intent")
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.refunds.create(params={})
    assert (info.value.http_status, info.value.param) == (400, "payment_intent")
    intent_id = _paid_intent(client, params_for, control, "ord_err")
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.refunds.create(params={"payment_intent": intent_id, "reason": "changed_mind"})
    assert info.value.param == "reason"
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.refunds.create(params={"payment_intent": intent_id, "amount": 0})
    assert info.value.param == "amount"
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.refunds.retrieve("re_unknown")
    assert info.value.http_status == 404


async def test_async_refund(client: stripe.StripeClient, params_for: Params, control: FakeStripeControl) -> None:
    intent_id = _paid_intent(client, params_for, control, "ord_async_refund")
    refund = await client.v1.refunds.create_async(
        params={"payment_intent": intent_id}, options={"idempotency_key": "refund:ord_async_refund"}
    )
    assert refund.status == "succeeded"
