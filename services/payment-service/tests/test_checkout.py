"""Component tests of opening a checkout: real database, the Stripe stand-in over HTTP, the SDK unmodified."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
import stripe

from payment_service.adapters.stripe_gateway import StripeGateway
from payment_service.service_layer.checkout import CheckoutService, NotPayable
from payment_service.testing import Db, Orders
from stripe_fake.testing import FakeStripeControl, FakeStripeServer

pytestmark = pytest.mark.component


async def test_a_new_session_carries_the_order_and_every_parameter_is_stored_before_the_call(
    checkout: CheckoutService, orders: Orders, db: Db, stripe_control: FakeStripeControl
) -> None:
    order = orders.new(amount=1234, currency="eur")
    opened = await checkout.open(order)
    assert not opened.reused
    (remote,) = stripe_control.sessions(order_id=str(order.snapshot.order_id))
    oid = str(order.snapshot.order_id)
    assert remote["id"] == opened.session_id and remote["client_secret"] == opened.client_secret
    assert remote["ui_mode"] == "embedded_page" and remote["mode"] == "payment" and remote["url"] is None
    assert remote["amount_total"] == 1234 and remote["currency"] == "eur"
    assert remote["metadata"] == {"serverOrderId": oid} and remote["client_reference_id"] == oid
    assert "{CHECKOUT_SESSION_ID}" in remote["return_url"]
    details = stripe_control.session(opened.session_id)
    assert details["payment_intent_data"]["metadata"] == {"serverOrderId": oid}
    (attempt,) = await db.attempts(order.snapshot.order_id)
    assert attempt.params["expires_at"] == remote["expires_at"] == int(attempt.expires_at.timestamp())
    assert attempt.idempotency_key == f"checkout-session:{oid}:1"
    assert "payment_method_types" not in attempt.params


async def test_a_second_request_reuses_the_open_session_after_asking_stripe(
    checkout: CheckoutService, orders: Orders, stripe_control: FakeStripeControl
) -> None:
    order = orders.new()
    first, second, third = await asyncio.gather(*(checkout.open(order) for _ in range(3)))
    again = await checkout.open(order)
    assert {first.session_id, second.session_id, third.session_id, again.session_id} == {first.session_id}
    assert again.reused and again.client_secret == first.client_secret
    assert len(stripe_control.sessions(order_id=str(order.snapshot.order_id))) == 1


async def test_a_lost_answer_is_retried_with_the_stored_parameters_and_makes_one_session(
    checkout: CheckoutService, orders: Orders, db: Db, stripe_control: FakeStripeControl
) -> None:
    order = orders.new()
    stripe_control.add_fault(
        path_prefix="/v1/checkout/sessions", method="POST", status=500, after_commit=True, should_retry=False
    )
    with pytest.raises(stripe.APIError):
        await checkout.open(order)
    (attempt,) = await db.attempts(order.snapshot.order_id)
    assert attempt.status == "creating"
    stored = dict(attempt.params)
    assert len(stripe_control.sessions(order_id=str(order.snapshot.order_id))) == 1  # Stripe did make it

    opened = await checkout.open(order)
    (remote,) = stripe_control.sessions(order_id=str(order.snapshot.order_id))
    assert opened.session_id == remote["id"]
    (attempt,) = await db.attempts(order.snapshot.order_id)
    assert attempt.params == stored and attempt.status == "open"


async def test_an_expired_session_is_replaced(
    checkout: CheckoutService, orders: Orders, db: Db, gateway: StripeGateway, stripe_control: FakeStripeControl
) -> None:
    order = orders.new()
    first = await checkout.open(order)
    await gateway.expire_checkout_session(first.session_id)  # e.g. from the dashboard
    second = await checkout.open(order)
    assert second.session_id != first.session_id and not second.reused
    statuses = [a.status for a in await db.attempts(order.snapshot.order_id)]
    assert statuses == ["expired", "open"]


async def test_a_session_about_to_expire_is_expired_first_then_replaced(
    checkout: CheckoutService, orders: Orders, db: Db, stripe_control: FakeStripeControl
) -> None:
    order = orders.new()
    first = await checkout.open(order)
    near_its_end = first.expires_at - timedelta(minutes=1)
    second = await checkout.open(order, now=near_its_end)
    assert second.session_id != first.session_id
    remote = {s["id"]: s["status"] for s in stripe_control.sessions(order_id=str(order.snapshot.order_id))}
    assert remote == {first.session_id: "expired", second.session_id: "open"}
    (expired,) = stripe_control.events(type="checkout.session.expired", session_id=first.session_id)
    assert expired["request"]["idempotency_key"] == f"expire:{first.session_id}"


async def test_a_session_paid_while_we_replace_it_is_fulfilled_and_no_new_session_is_made(
    checkout: CheckoutService, orders: Orders, db: Db, stripe_control: FakeStripeControl
) -> None:
    order = orders.new()
    first = await checkout.open(order)
    stripe_control.pay(first.session_id, "paid")
    with pytest.raises(NotPayable) as refused:
        await checkout.open(order, now=first.expires_at - timedelta(minutes=1))
    assert refused.value.status == "paid"
    assert len(stripe_control.sessions(order_id=str(order.snapshot.order_id))) == 1
    (paid,) = await db.outbox(order.snapshot.order_id, "OrderPaid")
    assert b'"fulfilled_via":"return_page"' in paid.body
    with pytest.raises(NotPayable):
        await checkout.open(order)


async def test_an_unfinished_attempt_too_close_to_its_end_is_abandoned_for_a_new_one(
    checkout: CheckoutService, orders: Orders, db: Db, stripe_control: FakeStripeControl
) -> None:
    order = orders.new()
    stripe_control.add_fault(path_prefix="/v1/checkout/sessions", method="POST", status=503, should_retry=False)
    with pytest.raises(stripe.APIError):
        await checkout.open(order)
    later = datetime.now(UTC) + timedelta(minutes=45)  # the stored expires_at is now < 30 min ahead
    opened = await checkout.open(order, now=later)
    assert [a.status for a in await db.attempts(order.snapshot.order_id)] == ["abandoned", "open"]
    (remote,) = stripe_control.sessions(order_id=str(order.snapshot.order_id))
    assert remote["id"] == opened.session_id


async def test_parameters_stripe_refuses_are_never_sent_again(
    checkout: CheckoutService, orders: Orders, db: Db, stripe_control: FakeStripeControl
) -> None:
    order = orders.new()
    skewed = datetime.now(UTC) - timedelta(minutes=40)  # our clock behind: expires_at lands < 30 min ahead
    with pytest.raises(stripe.InvalidRequestError):
        await checkout.open(order, now=skewed)
    assert [a.status for a in await db.attempts(order.snapshot.order_id)] == ["abandoned"]
    await checkout.open(order)
    assert [a.status for a in await db.attempts(order.snapshot.order_id)] == ["abandoned", "open"]


async def test_stripe_refusing_the_key_is_not_a_crash(stripe_server: FakeStripeServer, orders: Orders) -> None:
    gateway = StripeGateway("sk_live_not_accepted", api_base=stripe_server.url, max_network_retries=0)
    with pytest.raises(stripe.AuthenticationError):
        await gateway.retrieve_checkout_session("cs_test_missing")
