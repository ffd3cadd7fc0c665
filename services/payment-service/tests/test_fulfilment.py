"""Component tests of the one fulfilment: concurrency, event bookkeeping, refunds of money we must not keep."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest

from payment_service.adapters.repositories import STRIPE_EVENTS_CHANNEL, ClaimedEvent
from payment_service.adapters.stripe_gateway import CheckoutSession, StripeGateway
from payment_service.adapters.tables import StripeEventRow
from payment_service.domain.stripe_events import RetryLater
from payment_service.entrypoints.webhook_worker import WebhookWorker
from payment_service.service_layer.checkout import CheckoutService
from payment_service.service_layer.event_intake import EventIntake
from payment_service.service_layer.fulfilment import Fulfilment, expire, fail
from payment_service.service_layer.paid import Channel
from payment_service.service_layer.refunds import RefundExecutor
from payment_service.service_layer.stored_events import StoredEventRunner, StripeHandler
from payment_service.service_layer.unit_of_work import PaymentUnitOfWork
from payment_service.testing import Db, Orders
from spawnpoint_kit.db import asyncpg_dsn
from spawnpoint_kit.testing import eventually
from stripe_fake.testing import FakeStripeControl

pytestmark = pytest.mark.component

UnitOfWorkFactory = Callable[[], PaymentUnitOfWork]


async def _listeners(database_url: str) -> int:
    """Connections of this database listening on the stored-events channel (their last statement was LISTEN)."""
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query = $1",
            f'LISTEN "{STRIPE_EVENTS_CHANNEL}"',
        )
        return count
    finally:
        await conn.close()


def _claimed(event: dict[str, Any]) -> ClaimedEvent:
    """A stored event as the webhook worker leases it (not leased from the table: other tests' events are
    in the same database)."""
    obj = event["data"]["object"]
    return ClaimedEvent(event["id"], event["type"], obj["id"], uuid.UUID(obj["metadata"]["serverOrderId"]), 0)


async def _handle(unit_of_work: UnitOfWorkFactory, handler: StripeHandler, checkout: CheckoutSession) -> str:
    """A Stripe handler in a unit of work of its own, as the sweeper runs it."""
    uow = unit_of_work()
    async with uow:
        outcome = await handler(checkout, uow)
        await uow.commit()
    return outcome


async def _paid_session(checkout: CheckoutService, orders: Orders, control: FakeStripeControl) -> tuple[uuid.UUID, str]:
    order = orders.new()
    opened = await checkout.open(order)
    control.pay(opened.session_id, "paid")
    return order.snapshot.order_id, opened.session_id


async def test_ten_concurrent_callers_on_three_paths_make_one_order_paid(
    checkout: CheckoutService, fulfilment: Fulfilment, orders: Orders, db: Db, stripe_control: FakeStripeControl
) -> None:
    order_id, session_id = await _paid_session(checkout, orders, stripe_control)
    checkout_now = await fulfilment.retrieve(session_id)
    paths: tuple[Channel, ...] = ("webhook", "return_page", "sweeper") * 4
    results = await asyncio.gather(*(fulfilment.apply(checkout_now, via=p) for p in paths[:10]))
    assert sorted(r.outcome for r in results).count("fulfilled") == 1
    assert {r.outcome for r in results} == {"fulfilled", "already_paid"}
    assert len(await db.outbox(order_id, "OrderPaid")) == 1
    assert (await db.payment(order_id)).status == "paid"


async def test_an_event_is_marked_processed_in_the_transaction_that_applies_it(
    intake: EventIntake,
    checkout: CheckoutService,
    runner: StoredEventRunner,
    orders: Orders,
    db: Db,
    stripe_control: FakeStripeControl,
) -> None:
    order_id, session_id = await _paid_session(checkout, orders, stripe_control)
    (event,) = stripe_control.events(type="checkout.session.completed", session_id=session_id)
    assert await intake.record(event) == "stored"
    assert await intake.record(event) == "duplicate"
    first = await runner.apply(_claimed(event))
    again = await runner.apply(_claimed(event))
    assert (first, again) == ("fulfilled", "duplicate_event")
    (stored,) = await db.stripe_events(order_id)
    assert stored.status == "processed" and stored.outcome == "fulfilled" and stored.processed_at is not None


async def test_the_webhook_worker_applies_a_stored_event_once_it_is_notified(
    intake: EventIntake,
    checkout: CheckoutService,
    runner: StoredEventRunner,
    unit_of_work: UnitOfWorkFactory,
    database_url: str,
    orders: Orders,
    db: Db,
    stripe_control: FakeStripeControl,
) -> None:
    """The loop itself: lease due events, hand each to the runner, wait for NOTIFY (a long poll here)."""
    order_id, session_id = await _paid_session(checkout, orders, stripe_control)
    (event,) = stripe_control.events(type="checkout.session.completed", session_id=session_id)
    worker = WebhookWorker(runner, unit_of_work, database_url=database_url, concurrency=4, poll_seconds=30)
    stop = asyncio.Event()
    listeners_before = await _listeners(database_url)
    running = asyncio.create_task(worker.run(stop))

    async def listening() -> bool:
        return await _listeners(database_url) > listeners_before

    async def processed() -> StripeEventRow | None:
        (stored,) = await db.stripe_events(order_id)
        return stored if stored.status == "processed" else None

    try:
        await eventually(listening, timeout=10, what="the worker listening")
        assert await intake.record(event) == "stored"
        # Well inside the worker's 30 s poll: only the NOTIFY can have woken it.
        stored = await eventually(processed, timeout=10, what="the event processed")
    finally:
        stop.set()
        await asyncio.wait_for(running, timeout=15)
    assert stored.outcome == "fulfilled"
    assert len(await db.outbox(order_id, "OrderPaid")) == 1


async def test_an_event_for_an_order_not_known_yet_is_kept_for_later(
    intake: EventIntake,
    gateway: StripeGateway,
    runner: StoredEventRunner,
    orders: Orders,
    db: Db,
    stripe_control: FakeStripeControl,
) -> None:
    order = orders.new()
    oid = str(order.snapshot.order_id)
    foreign = await gateway.create_checkout_session(_params(oid, stripe_control), idempotency_key=str(uuid.uuid4()))
    stripe_control.pay(foreign.id, "paid")
    (event,) = stripe_control.events(type="checkout.session.completed", session_id=foreign.id)
    await intake.record(event)
    with pytest.raises(RetryLater):
        await runner.apply(_claimed(event))
    (stored,) = await db.stripe_events(order.snapshot.order_id)
    assert stored.status == "pending"
    assert await runner.run(_claimed(event)) is False  # what the worker does with it: a later attempt
    (kept,) = await db.stripe_events(order.snapshot.order_id)
    assert kept.status == "pending" and kept.attempts == 1 and "not known" in (kept.last_error or "")


async def test_a_paid_session_with_the_wrong_amount_is_refunded_once_and_ends_the_order(
    gateway: StripeGateway,
    checkout: CheckoutService,
    fulfilment: Fulfilment,
    orders: Orders,
    db: Db,
    stripe_control: FakeStripeControl,
) -> None:
    order = orders.new(amount=500)
    await checkout.open(order)  # the order is known here, priced at 500
    oid = str(order.snapshot.order_id)
    cheap = await gateway.create_checkout_session(
        _params(oid, stripe_control, amount=1), idempotency_key=str(uuid.uuid4())
    )
    stripe_control.pay(cheap.id, "paid")
    result = await fulfilment.apply(await fulfilment.retrieve(cheap.id), via="webhook")
    again = await fulfilment.apply(await fulfilment.retrieve(cheap.id), via="sweeper")
    assert (result.outcome, again.outcome) == ("refund_mismatch", "already_paid")
    assert await db.outbox(order.snapshot.order_id, "OrderPaid") == []
    (refund,) = await db.refunds(order.snapshot.order_id)
    assert (refund.reason, refund.amount, refund.kind) == ("amount_mismatch", 1, "order")
    assert (await db.payment(order.snapshot.order_id)).status == "refund_pending"


async def test_a_second_paid_session_is_refunded_on_its_own_and_the_order_keeps_its_payment(
    gateway: StripeGateway,
    checkout: CheckoutService,
    fulfilment: Fulfilment,
    executor: RefundExecutor,
    orders: Orders,
    db: Db,
    stripe_control: FakeStripeControl,
) -> None:
    order_id, session_id = await _paid_session(checkout, orders, stripe_control)
    assert (await fulfilment.apply(await fulfilment.retrieve(session_id), via="webhook")).outcome == "fulfilled"
    other = await gateway.create_checkout_session(
        _params(str(order_id), stripe_control), idempotency_key=str(uuid.uuid4())
    )
    stripe_control.pay(other.id, "paid")
    again = await fulfilment.retrieve(other.id)
    assert (await fulfilment.apply(again, via="webhook")).outcome == "duplicate_payment"
    assert (await fulfilment.apply(again, via="sweeper")).outcome == "duplicate_payment"
    (refund,) = await db.refunds(order_id)
    assert refund.idempotency_key == f"refund:{order_id}:{again.payment_intent}" and refund.kind == "duplicate"
    await executor.run_due()
    (done,) = await db.refunds(order_id)
    assert done.status == "succeeded"
    (stripe_refund,) = stripe_control.refunds(payment_intent=str(again.payment_intent))
    assert stripe_refund["reason"] == "duplicate"
    payment = await db.payment(order_id)
    assert payment.status == "paid" and payment.paid_session_id == session_id
    assert len(await db.outbox(order_id, "OrderPaid")) == 1
    assert await db.outbox(order_id, "OrderRefunded") == []


async def test_money_for_an_expired_order_is_returned_with_order_refunded(
    gateway: StripeGateway,
    checkout: CheckoutService,
    fulfilment: Fulfilment,
    unit_of_work: UnitOfWorkFactory,
    executor: RefundExecutor,
    orders: Orders,
    db: Db,
    stripe_control: FakeStripeControl,
) -> None:
    order = orders.new()
    order_id = order.snapshot.order_id
    ours = await checkout.open(order)
    stray = await gateway.create_checkout_session(
        _params(str(order_id), stripe_control), idempotency_key=str(uuid.uuid4())
    )
    await gateway.expire_checkout_session(ours.session_id)
    assert await _handle(unit_of_work, expire, await fulfilment.retrieve(ours.session_id)) == "expired"
    stripe_control.pay(stray.id, "paid")  # a page still open somewhere: the customer paid anyway
    result = await fulfilment.apply(await fulfilment.retrieve(stray.id), via="webhook")
    assert result.outcome == "paid_after_close" and result.status == "refund_pending"
    await executor.run_due()
    assert (await db.payment(order_id)).status == "refunded"
    (refunded,) = await db.outbox(order_id, "OrderRefunded")
    assert b'"reason":"paid_after_expiry"' in refunded.body
    (refund,) = await db.refunds(order_id)
    assert refund.idempotency_key == f"refund:{order_id}"
    assert len(stripe_control.refunds(order_id=str(order_id))) == 1
    assert await db.outbox(order_id, "OrderPaid") == []


async def test_a_delayed_payment_waits_then_fails_without_refund(
    checkout: CheckoutService,
    fulfilment: Fulfilment,
    unit_of_work: UnitOfWorkFactory,
    orders: Orders,
    db: Db,
    stripe_control: FakeStripeControl,
) -> None:
    order = orders.new()
    opened = await checkout.open(order)
    stripe_control.pay(opened.session_id, "delayed")
    result = await fulfilment.apply(await fulfilment.retrieve(opened.session_id), via="webhook")
    assert (result.outcome, result.status) == ("processing", "payment_processing")
    stripe_control.settle(opened.session_id, "failed")
    failed = await fulfilment.retrieve(opened.session_id)
    assert failed.payment_intent_status == "requires_payment_method"
    assert await _handle(unit_of_work, fail, failed) == "payment_failed"
    assert await _handle(unit_of_work, fail, failed) == "no_change"
    order_id = order.snapshot.order_id
    assert len(await db.outbox(order_id, "PaymentProcessing")) == 1
    assert len(await db.outbox(order_id, "PaymentFailed")) == 1
    assert await db.outbox(order_id, "OrderPaid") == [] and await db.refunds(order_id) == []


async def test_a_refund_whose_answer_was_lost_is_not_made_twice(
    gateway: StripeGateway,
    checkout: CheckoutService,
    fulfilment: Fulfilment,
    executor: RefundExecutor,
    orders: Orders,
    db: Db,
    stripe_control: FakeStripeControl,
) -> None:
    order_id, session_id = await _paid_session(checkout, orders, stripe_control)
    await fulfilment.apply(await fulfilment.retrieve(session_id), via="webhook")
    other = await gateway.create_checkout_session(
        _params(str(order_id), stripe_control), idempotency_key=str(uuid.uuid4())
    )
    stripe_control.pay(other.id, "paid")
    await fulfilment.apply(await fulfilment.retrieve(other.id), via="webhook")
    stripe_control.add_fault(
        path_prefix="/v1/refunds", method="POST", status=500, after_commit=True, should_retry=False
    )
    await executor.run_due()
    (pending,) = await db.refunds(order_id)
    assert pending.status == "executing" and pending.attempts == 1
    await executor.execute(pending.id)  # the worker's next run (its backoff skipped here)
    (done,) = await db.refunds(order_id)
    assert done.status == "succeeded"
    assert len(stripe_control.refunds(order_id=str(order_id))) == 1


async def test_an_already_refunded_charge_is_adopted_not_failed(
    gateway: StripeGateway,
    checkout: CheckoutService,
    fulfilment: Fulfilment,
    executor: RefundExecutor,
    orders: Orders,
    db: Db,
    stripe_control: FakeStripeControl,
) -> None:
    order_id, session_id = await _paid_session(checkout, orders, stripe_control)
    await fulfilment.apply(await fulfilment.retrieve(session_id), via="webhook")
    other = await gateway.create_checkout_session(
        _params(str(order_id), stripe_control), idempotency_key=str(uuid.uuid4())
    )
    stripe_control.pay(other.id, "paid")
    current = await fulfilment.retrieve(other.id)
    assert current.payment_intent is not None
    manual = await gateway.refund(
        payment_intent=current.payment_intent, idempotency_key="by-hand", reason=None, metadata={}
    )
    await fulfilment.apply(current, via="webhook")
    await executor.run_due()
    (done,) = await db.refunds(order_id)
    assert done.status == "succeeded" and done.stripe_refund_id == manual.id


def _params(order_id: str, control: FakeStripeControl, *, amount: int = 500) -> dict[str, Any]:
    """A session made outside this service for the order (another deployment, a restored backup...)."""
    return {
        "mode": "payment",
        "ui_mode": "embedded_page",
        "line_items": [
            {"price_data": {"currency": "eur", "unit_amount": amount, "product_data": {"name": "x"}}, "quantity": 1}
        ],
        "metadata": {"serverOrderId": order_id},
        "client_reference_id": order_id,
        "payment_intent_data": {"metadata": {"serverOrderId": order_id}},
        "return_url": "https://shop.example.test/r?session_id={CHECKOUT_SESSION_ID}",
        "expires_at": control.now() + 3600,
    }
