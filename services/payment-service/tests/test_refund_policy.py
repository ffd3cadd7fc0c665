"""Component tests of refunds after provisioning failures: the policy, the hold, replays, duplicates.

The provisioning events are delivered through the queue's real subscription (the handler table and inbox
consumer name bootstrap registers); what each delivery did is read back from what the service shows.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from payment_service.adapters.tables import PaymentRow, RefundRow
from payment_service.domain.refunds import RefundPolicy, RefundRules, RefundState
from payment_service.queues import PAYMENT_PROVISION_FAILED
from payment_service.service_layer.checkout import CheckoutService
from payment_service.service_layer.fulfilment import Fulfilment
from payment_service.service_layer.handlers import provisioning_handlers
from payment_service.service_layer.provisioning import CONSUMER, ProgressEvent
from payment_service.service_layer.refunds import RefundExecutor
from payment_service.service_layer.unit_of_work import PaymentUnitOfWork
from payment_service.testing import Db, Orders, provision_failed, server_created, server_installed
from spawnpoint_contracts import (
    Event,
    ProvisionFailed,
)
from spawnpoint_kit.messaging.delivery import Delivery
from spawnpoint_kit.messaging.handlers import Subscription
from stripe_fake.testing import FakeStripeControl

pytestmark = pytest.mark.component

UnitOfWorkFactory = Callable[[], PaymentUnitOfWork]


async def _paid(
    checkout: CheckoutService, fulfilment: Fulfilment, orders: Orders, control: FakeStripeControl
) -> uuid.UUID:
    order = orders.new()
    opened = await checkout.open(order)
    control.pay(opened.session_id, "paid")
    await fulfilment.apply(await fulfilment.retrieve(opened.session_id), via="webhook")
    return order.snapshot.order_id


def _refunds_counted(outcome: str) -> float:
    sample = REGISTRY.get_sample_value("payment_refunds_total", {"reason": "provisioning_failed", "outcome": outcome})
    return sample or 0.0


class _Queue:
    """payment-service.provision-failed as the kit consumes it. ``on_failed`` and ``on_progress`` deliver one
    event and say what it did: ``duplicate`` when the inbox turned it away; otherwise, for a failure, the
    refund it scheduled (``scheduled``), or none because one is scheduled already (``already_scheduled``) or
    none is warranted (``not_refunded``); for progress, whether it cancelled a held refund
    (``cancelled_refund``) or was only recorded (``recorded``). Read from the inbox, the refund counters and
    the refund rows, never from the handler."""

    def __init__(self, unit_of_work: UnitOfWorkFactory, db: Db, policy: RefundPolicy, hold: float) -> None:
        self.db = db
        self.duplicates: list[uuid.UUID] = []

        async def on_duplicate(event: Event, _: PaymentUnitOfWork) -> None:
            self.duplicates.append(event.event_id)

        self.subscription = Subscription(
            PAYMENT_PROVISION_FAILED,
            provisioning_handlers(RefundRules(policy, timedelta(seconds=hold))),
            unit_of_work=unit_of_work,
            consumer=CONSUMER,
            on_duplicate=on_duplicate,
        )

    async def _deliver(self, event: Event) -> bool:
        """True when the event was handled, False when the inbox knew it."""
        before = len(self.duplicates)
        await self.subscription.handle(event, Delivery.of(event, PAYMENT_PROVISION_FAILED.name))
        return len(self.duplicates) == before

    async def on_failed(self, event: ProvisionFailed) -> str:
        scheduled, not_refunded = _refunds_counted("scheduled"), _refunds_counted("not_refunded")
        if not await self._deliver(event):
            return "duplicate"
        if _refunds_counted("scheduled") == scheduled + 1:
            return "scheduled"
        if _refunds_counted("not_refunded") == not_refunded + 1:
            return "not_refunded"
        held = [r for r in await self.db.refunds(event.order_id) if r.idempotency_key == f"refund:{event.order_id}"]
        assert held, "a failure that neither scheduled nor declined a refund must have found one scheduled"
        return "already_scheduled"

    async def on_progress(self, event: ProgressEvent) -> str:
        cancelled = _refunds_counted("cancelled")
        if not await self._deliver(event):
            return "duplicate"
        return "cancelled_refund" if _refunds_counted("cancelled") > cancelled else "recorded"


def _handlers(unit_of_work: UnitOfWorkFactory, db: Db, policy: RefundPolicy, hold: float = 0) -> _Queue:
    return _Queue(unit_of_work, db, policy, hold)


async def test_immediate_policy_refunds_once_even_when_the_failure_arrives_twice_or_again(
    unit_of_work: UnitOfWorkFactory,
    checkout: CheckoutService,
    fulfilment: Fulfilment,
    executor: RefundExecutor,
    orders: Orders,
    db: Db,
    stripe_control: FakeStripeControl,
) -> None:
    order_id = await _paid(checkout, fulfilment, orders, stripe_control)
    handlers = _handlers(unit_of_work, db, RefundPolicy.IMMEDIATE)
    failure = provision_failed(order_id)
    assert await handlers.on_failed(failure) == "scheduled"
    assert await handlers.on_failed(failure) == "duplicate"  # the same message redelivered
    assert await handlers.on_failed(provision_failed(order_id)) == "already_scheduled"  # a second failure event
    await executor.run_due()
    await executor.run_due()
    assert (await db.payment(order_id)).status == "refunded"
    (refund,) = await db.refunds(order_id)
    assert refund.status == "succeeded" and refund.idempotency_key == f"refund:{order_id}"
    assert len(await db.outbox(order_id, "OrderRefunded")) == 1
    assert len(stripe_control.refunds(order_id=str(order_id))) == 1
    assert await handlers.on_failed(provision_failed(order_id)) == "not_refunded"  # refunded orders stay refunded


async def test_replayable_failures_and_the_never_policy_do_not_refund(
    unit_of_work: UnitOfWorkFactory,
    checkout: CheckoutService,
    fulfilment: Fulfilment,
    orders: Orders,
    db: Db,
    stripe_control: FakeStripeControl,
) -> None:
    order_id = await _paid(checkout, fulfilment, orders, stripe_control)
    assert await _handlers(unit_of_work, db, RefundPolicy.IMMEDIATE).on_failed(
        provision_failed(order_id, replayable=True)
    ) == ("not_refunded")
    assert await _handlers(unit_of_work, db, RefundPolicy.NEVER).on_failed(provision_failed(order_id)) == "not_refunded"
    assert await db.refunds(order_id) == []
    assert (await db.payment(order_id)).status == "paid"


async def test_a_held_refund_is_cancelled_by_a_successful_replay(
    unit_of_work: UnitOfWorkFactory,
    checkout: CheckoutService,
    fulfilment: Fulfilment,
    executor: RefundExecutor,
    orders: Orders,
    db: Db,
    stripe_control: FakeStripeControl,
) -> None:
    order_id = await _paid(checkout, fulfilment, orders, stripe_control)
    handlers = _handlers(unit_of_work, db, RefundPolicy.HOLD, hold=3600)
    failed_at = datetime.now(UTC)
    assert await handlers.on_failed(provision_failed(order_id, at=failed_at)) == "scheduled"
    (held,) = await db.refunds(order_id)
    assert held.status == "scheduled" and held.due_at >= failed_at + timedelta(seconds=3599)
    assert await handlers.on_progress(server_created(order_id, failed_at + timedelta(seconds=5))) == "cancelled_refund"
    await handlers.on_progress(server_installed(order_id, failed_at + timedelta(seconds=9)))
    (cancelled,) = await db.refunds(order_id)
    assert cancelled.status == "cancelled"
    assert await executor.run_due() == 0
    payment = await db.payment(order_id)
    assert payment.status == "paid" and payment.server_installed_at is not None
    assert stripe_control.refunds(order_id=str(order_id)) == []


async def test_a_stale_failure_arriving_after_the_replay_succeeded_refunds_nothing(
    unit_of_work: UnitOfWorkFactory,
    checkout: CheckoutService,
    fulfilment: Fulfilment,
    orders: Orders,
    db: Db,
    stripe_control: FakeStripeControl,
) -> None:
    order_id = await _paid(checkout, fulfilment, orders, stripe_control)
    handlers = _handlers(unit_of_work, db, RefundPolicy.IMMEDIATE)
    failed_at = datetime.now(UTC) - timedelta(minutes=5)
    await handlers.on_progress(server_created(order_id, failed_at + timedelta(minutes=1)))
    assert await handlers.on_failed(provision_failed(order_id, at=failed_at)) == "not_refunded"
    assert await db.refunds(order_id) == []


async def test_a_refund_that_comes_due_after_the_server_was_installed_is_cancelled_then(
    sessions: async_sessionmaker[AsyncSession],
    unit_of_work: UnitOfWorkFactory,
    checkout: CheckoutService,
    fulfilment: Fulfilment,
    executor: RefundExecutor,
    orders: Orders,
    db: Db,
    stripe_control: FakeStripeControl,
) -> None:
    """Belt and braces: the worker re-checks the rule when the refund is due, whatever was cancelled."""
    order_id = await _paid(checkout, fulfilment, orders, stripe_control)
    handlers = _handlers(unit_of_work, db, RefundPolicy.HOLD, hold=0)
    failed_at = datetime.now(UTC)
    await handlers.on_failed(provision_failed(order_id, at=failed_at))
    async with sessions() as session:
        payment = await session.get(PaymentRow, order_id)
        assert payment is not None
        payment.server_installed_at = failed_at + timedelta(seconds=1)  # as if recorded without the cancel
        session.add(payment)
        await session.commit()
    await executor.run_due()
    (refund,) = await db.refunds(order_id)
    assert refund.status == "cancelled" and "no longer warranted" in (refund.last_error or "")
    assert stripe_control.refunds(order_id=str(order_id)) == []


async def test_a_new_failure_after_a_cancelled_hold_schedules_the_refund_again(
    unit_of_work: UnitOfWorkFactory,
    checkout: CheckoutService,
    fulfilment: Fulfilment,
    executor: RefundExecutor,
    orders: Orders,
    db: Db,
    stripe_control: FakeStripeControl,
) -> None:
    order_id = await _paid(checkout, fulfilment, orders, stripe_control)
    handlers = _handlers(unit_of_work, db, RefundPolicy.HOLD, hold=0)
    start = datetime.now(UTC) - timedelta(minutes=1)
    await handlers.on_failed(provision_failed(order_id, at=start))
    await handlers.on_progress(server_created(order_id, start + timedelta(seconds=10)))
    assert await handlers.on_failed(provision_failed(order_id, at=start + timedelta(seconds=20))) == "scheduled"
    await executor.run_due()
    (refund,) = await db.refunds(order_id)
    assert refund.status == "succeeded"
    assert len(stripe_control.refunds(order_id=str(order_id))) == 1


async def test_a_refund_stripe_refuses_is_failed_for_an_operator_who_can_schedule_it_again(
    sessions: async_sessionmaker[AsyncSession],
    unit_of_work: UnitOfWorkFactory,
    checkout: CheckoutService,
    fulfilment: Fulfilment,
    executor: RefundExecutor,
    orders: Orders,
    db: Db,
    stripe_control: FakeStripeControl,
) -> None:
    order_id = await _paid(checkout, fulfilment, orders, stripe_control)
    await _handlers(unit_of_work, db, RefundPolicy.IMMEDIATE).on_failed(provision_failed(order_id))
    stripe_control.add_fault(path_prefix="/v1/refunds", method="POST", status=400)
    await executor.run_due()
    (refused,) = await db.refunds(order_id)
    assert refused.status == "failed" and "Injected fault" in (refused.last_error or "")
    assert (await db.payment(order_id)).status == "refund_pending"
    async with sessions() as session:  # what the operator does once the cause is fixed
        row = await session.get(RefundRow, refused.id)
        assert row is not None
        row.status = RefundState.SCHEDULED
        session.add(row)
        await session.commit()
    await executor.run_due()
    (done,) = await db.refunds(order_id)
    assert done.status == "succeeded"
    assert (await db.payment(order_id)).status == "refunded"
    assert len(stripe_control.refunds(order_id=str(order_id))) == 1
