"""Component tests of the reconciliation sweeper: what Stripe knows and no webhook told us."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import stripe

from payment_service.adapters.stripe_gateway import StripeGateway
from payment_service.service_layer.checkout import CheckoutService
from payment_service.service_layer.fulfilment import Fulfilment
from payment_service.service_layer.sweeper import Sweeper
from payment_service.service_layer.unit_of_work import PaymentUnitOfWork
from payment_service.testing import Db, Orders
from stripe_fake.testing import FakeStripeControl

pytestmark = pytest.mark.component


UnitOfWorkFactory = Callable[[], PaymentUnitOfWork]


def _sweeper(unit_of_work: UnitOfWorkFactory, fulfilment: Fulfilment, after: float = 0) -> Sweeper:
    return Sweeper(unit_of_work, fulfilment, after=timedelta(seconds=after), batch_size=5000)


async def test_a_paid_order_without_its_webhook_is_fulfilled_by_the_sweeper(
    unit_of_work: UnitOfWorkFactory,
    checkout: CheckoutService,
    fulfilment: Fulfilment,
    orders: Orders,
    db: Db,
    stripe_control: FakeStripeControl,
) -> None:
    order = orders.new()
    opened = await checkout.open(order)
    stripe_control.pay(opened.session_id, "paid")
    young = await _sweeper(unit_of_work, fulfilment, after=600).sweep()
    assert await db.outbox(order.snapshot.order_id, "OrderPaid") == []  # too young: left to the webhook
    report = await _sweeper(unit_of_work, fulfilment).sweep()
    assert report.fulfilled >= 1 and young.orders <= report.orders
    (paid,) = await db.outbox(order.snapshot.order_id, "OrderPaid")
    assert b'"fulfilled_via":"sweeper"' in paid.body
    await _sweeper(unit_of_work, fulfilment).sweep(datetime.now(UTC) + timedelta(seconds=1))
    assert len(await db.outbox(order.snapshot.order_id, "OrderPaid")) == 1


async def test_an_expired_session_expires_the_order_and_a_delayed_one_waits(
    unit_of_work: UnitOfWorkFactory,
    checkout: CheckoutService,
    fulfilment: Fulfilment,
    gateway: StripeGateway,
    orders: Orders,
    db: Db,
    stripe_control: FakeStripeControl,
) -> None:
    gone, slow = orders.new(), orders.new()
    gone_session = await checkout.open(gone)
    slow_session = await checkout.open(slow)
    await gateway.expire_checkout_session(gone_session.session_id)
    stripe_control.pay(slow_session.session_id, "delayed")
    await _sweeper(unit_of_work, fulfilment).sweep()
    assert (await db.payment(gone.snapshot.order_id)).status == "expired"
    assert len(await db.outbox(gone.snapshot.order_id, "OrderExpired")) == 1
    assert (await db.payment(slow.snapshot.order_id)).status == "payment_processing"
    stripe_control.settle(slow_session.session_id, "succeeded")
    await _sweeper(unit_of_work, fulfilment).sweep()
    assert (await db.payment(slow.snapshot.order_id)).status == "paid"


async def test_an_order_whose_checkout_never_reached_the_customer_expires_after_its_window(
    unit_of_work: UnitOfWorkFactory,
    checkout: CheckoutService,
    fulfilment: Fulfilment,
    orders: Orders,
    db: Db,
    stripe_control: FakeStripeControl,
) -> None:
    order = orders.new()
    stripe_control.add_fault(path_prefix="/v1/checkout/sessions", method="POST", status=503, should_retry=False)
    with pytest.raises(stripe.APIError):
        await checkout.open(order)
    await _sweeper(unit_of_work, fulfilment).sweep()
    assert (await db.payment(order.snapshot.order_id)).status == "pending_payment"  # a retry may still come
    await _sweeper(unit_of_work, fulfilment).sweep(datetime.now(UTC) + timedelta(hours=2))
    assert (await db.payment(order.snapshot.order_id)).status == "expired"
    assert [a.status for a in await db.attempts(order.snapshot.order_id)] == ["abandoned"]
