"""The refund policy's handlers and the refund executor's steps, with the in-memory unit of work and a small
fake of Stripe's refunds: no database, no Stripe stand-in."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import stripe

from payment_service.adapters.stripe_gateway import Refund
from payment_service.adapters.tables import PaymentRow, RefundRow
from payment_service.domain.payment import PaymentStatus
from payment_service.domain.refunds import RefundKind, RefundPolicy, RefundReason, RefundRules, RefundState
from payment_service.queues import PAYMENT_PROVISION_FAILED
from payment_service.service_layer import refunds
from payment_service.service_layer.handlers import provisioning_handlers
from payment_service.service_layer.provisioning import CONSUMER
from payment_service.service_layer.refunds import RefundExecutor, RefundRequest, cancel_provisioning_refund
from payment_service.service_layer.unit_of_work import PaymentUnitOfWork
from payment_service.testing import (
    FakePaymentDatabase,
    FakePaymentUnitOfWork,
    Orders,
    provision_failed,
    server_created,
    server_installed,
)
from spawnpoint_contracts import (
    Event,
    OrderRefunded,
)
from spawnpoint_kit.messaging.delivery import Delivery
from spawnpoint_kit.messaging.handlers import Subscription

pytestmark = pytest.mark.unit

NOW = datetime.now(UTC)


class FakeStripeRefunds:
    """Stripe's refunds: answers each call (or raises what a test queued) and remembers the calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str | None]] = []
        self.errors: list[Exception] = []
        self.existing: dict[str, list[Refund]] = {}

    async def refund(
        self, *, payment_intent: str, idempotency_key: str, reason: str | None, metadata: dict[str, str]
    ) -> Refund:
        self.calls.append((payment_intent, idempotency_key, reason))
        if self.errors:
            raise self.errors.pop(0)
        return Refund(f"re_{len(self.calls)}", "succeeded", 500, "eur", payment_intent)

    async def refunds_of(self, payment_intent: str) -> list[Refund]:
        return self.existing.get(payment_intent, [])


def _invalid_request(message: str, *, http_status: int, code: str | None = None) -> Exception:
    error: Exception = stripe.InvalidRequestError(  # type: ignore[no-untyped-call]  # the SDK's errors are not annotated
        message, "payment_intent", code=code, http_status=http_status
    )
    return error


def _unreachable() -> Exception:
    error: Exception = stripe.APIConnectionError("connection reset")  # type: ignore[no-untyped-call]  # as above
    return error


def _paid(db: FakePaymentDatabase, *, failed_at: datetime | None = NOW, installed: bool = False) -> PaymentRow:
    """A paid order whose provisioning failed for good at ``failed_at`` (unless None)."""
    snapshot = Orders().new(amount=500).snapshot
    row = PaymentRow(
        order_id=snapshot.order_id,
        user_id=snapshot.user_id,
        email=snapshot.email,
        amount=500,
        currency="eur",
        status=PaymentStatus.PAID,
        order_snapshot=snapshot.model_dump(mode="json"),
        correlation_id="c-1",
        paid_session_id="cs_a",
        payment_intent="pi_a",
        provision_failed_at=failed_at,
        provision_failure_replayable=False if failed_at else None,
        server_installed_at=NOW if installed else None,
    )
    db.payments.rows[row.order_id] = row
    return row


def _request(
    order_id: uuid.UUID, *, kind: RefundKind = RefundKind.ORDER, cause_at: datetime | None = NOW
) -> RefundRequest:
    return RefundRequest(
        order_id=order_id,
        key=f"refund:{order_id}" if kind == RefundKind.ORDER else f"refund:{order_id}:pi_b",
        kind=kind,
        reason=RefundReason.PROVISIONING_FAILED if kind == RefundKind.ORDER else RefundReason.DUPLICATE_PAYMENT,
        session_id="cs_a",
        payment_intent="pi_a" if kind == RefundKind.ORDER else "pi_b",
        amount=500,
        currency="eur",
        due_at=NOW - timedelta(seconds=1),
        cause_at=cause_at,
    )


async def _schedule(db: FakePaymentDatabase, request: RefundRequest) -> bool:
    uow = db.unit_of_work()
    async with uow:
        scheduled = await refunds.schedule(uow, request)
        await uow.commit()
    return scheduled


def _only(db: FakePaymentDatabase) -> RefundRow:
    (refund,) = db.refunds.rows.values()
    return refund


# scheduling and cancelling ------------------------------------------------------------------------------


async def test_a_key_is_scheduled_once_and_again_only_after_it_was_cancelled() -> None:
    db = FakePaymentDatabase()
    payment = _paid(db)
    assert await _schedule(db, _request(payment.order_id)) is True
    assert await _schedule(db, _request(payment.order_id)) is False
    refund = _only(db)
    refund.status, refund.last_error = RefundState.CANCELLED, "cancelled: progress"
    later = replace(_request(payment.order_id), due_at=NOW + timedelta(hours=1))
    assert await _schedule(db, later) is True
    assert _only(db) is refund and refund.status == RefundState.SCHEDULED
    assert refund.due_at == later.due_at and refund.last_error is None
    for final in (RefundState.SUCCEEDED, RefundState.FAILED, RefundState.EXECUTING):
        refund.status = final
        assert await _schedule(db, later) is False and refund.status == final


async def test_progress_cancels_only_a_held_refund_its_failure_caused() -> None:
    db = FakePaymentDatabase()
    payment = _paid(db)
    await _schedule(db, _request(payment.order_id, cause_at=NOW))
    refund = _only(db)
    uow = db.unit_of_work()
    async with uow:
        assert await cancel_provisioning_refund(uow, payment.order_id, progress_at=NOW - timedelta(seconds=1)) == 0
        refund.status = RefundState.EXECUTING  # the money is moving: too late to cancel
        assert await cancel_provisioning_refund(uow, payment.order_id, progress_at=NOW + timedelta(seconds=1)) == 0
        refund.status = RefundState.SCHEDULED
        assert await cancel_provisioning_refund(uow, payment.order_id, progress_at=NOW + timedelta(seconds=1)) == 1
        await uow.commit()
    assert refund.status == RefundState.CANCELLED and "provisioning progressed" in (refund.last_error or "")


# the provisioning queue's handlers ----------------------------------------------------------------------


async def _deliver(uow: FakePaymentUnitOfWork, policy: RefundPolicy, event: Event, hold: float = 0) -> None:
    subscription: Subscription[PaymentUnitOfWork] = Subscription(
        PAYMENT_PROVISION_FAILED,
        provisioning_handlers(RefundRules(policy, timedelta(seconds=hold))),
        unit_of_work=lambda: uow,
        consumer=CONSUMER,
    )
    await subscription.handle(event, Delivery.of(event, PAYMENT_PROVISION_FAILED.name))


async def test_an_unfixable_failure_schedules_one_refund_and_its_redelivery_is_turned_away() -> None:
    uow = FakePaymentUnitOfWork()
    payment = _paid(uow.database, failed_at=None)
    failure = provision_failed(payment.order_id, at=NOW)
    await _deliver(uow, RefundPolicy.IMMEDIATE, failure)
    refund = _only(uow.database)
    assert refund.idempotency_key == f"refund:{payment.order_id}" and refund.status == RefundState.SCHEDULED
    assert refund.cause_at == failure.occurred_at and payment.provision_failure_reason == "invalid_egg_variables"
    assert (CONSUMER, str(failure.event_id)) in uow.inbox and uow.commits == 1
    await _deliver(uow, RefundPolicy.IMMEDIATE, failure)
    assert uow.commits == 1, "the inbox turned the redelivery away: nothing ran, nothing committed"
    assert _only(uow.database) is refund


async def test_a_replayable_failure_or_the_never_policy_refunds_nothing_and_a_held_one_waits() -> None:
    uow = FakePaymentUnitOfWork()
    payment = _paid(uow.database, failed_at=None)
    await _deliver(uow, RefundPolicy.IMMEDIATE, provision_failed(payment.order_id, replayable=True, at=NOW))
    await _deliver(uow, RefundPolicy.NEVER, provision_failed(payment.order_id, at=NOW + timedelta(seconds=1)))
    assert not uow.database.refunds.rows and payment.status == PaymentStatus.PAID
    failed_at = NOW + timedelta(seconds=2)
    await _deliver(uow, RefundPolicy.HOLD, provision_failed(payment.order_id, at=failed_at), hold=900)
    assert _only(uow.database).due_at >= failed_at + timedelta(seconds=900)


async def test_progress_after_the_failure_cancels_the_hold_and_an_installed_server_is_never_refunded() -> None:
    uow = FakePaymentUnitOfWork()
    payment = _paid(uow.database, failed_at=None)
    await _deliver(uow, RefundPolicy.HOLD, provision_failed(payment.order_id, at=NOW), hold=3600)
    await _deliver(uow, RefundPolicy.HOLD, server_created(payment.order_id, NOW + timedelta(seconds=5)))
    assert _only(uow.database).status == RefundState.CANCELLED
    await _deliver(uow, RefundPolicy.HOLD, server_installed(payment.order_id, NOW + timedelta(seconds=9)))
    assert payment.server_installed_at is not None
    await _deliver(uow, RefundPolicy.IMMEDIATE, provision_failed(payment.order_id, at=NOW + timedelta(seconds=20)))
    assert _only(uow.database).status == RefundState.CANCELLED, "installed: a later failure refunds nothing"


async def test_events_for_an_order_never_seen_here_change_nothing() -> None:
    uow = FakePaymentUnitOfWork()
    order_id = uuid.uuid4()
    await _deliver(uow, RefundPolicy.IMMEDIATE, provision_failed(order_id, at=NOW))
    await _deliver(uow, RefundPolicy.IMMEDIATE, server_created(order_id, NOW))
    assert not uow.database.refunds.rows and not uow.database.payments.rows
    assert uow.commits == 2, "handled (the inbox keeps them) and ignored"


# the executor -------------------------------------------------------------------------------------------


async def test_an_order_refund_moves_the_money_once_and_announces_it_once() -> None:
    db = FakePaymentDatabase()
    payment = _paid(db)
    await _schedule(db, _request(payment.order_id))
    gateway = FakeStripeRefunds()
    executor = RefundExecutor(db.unit_of_work, gateway)
    assert await executor.run_due() == 1
    refund = _only(db)
    assert refund.status == RefundState.SUCCEEDED and refund.stripe_refund_id == "re_1"
    assert payment.status == PaymentStatus.REFUNDED
    assert gateway.calls == [("pi_a", f"refund:{payment.order_id}", None)]
    (refunded,) = db.events(OrderRefunded)
    assert refunded.payload.reason == "provisioning_failed" and refunded.payload.amount == 500
    assert await executor.run_due() == 0
    assert await executor.execute(refund.id) == "skipped" and len(gateway.calls) == 1


async def test_a_refund_that_is_no_longer_warranted_when_due_is_cancelled_without_calling_stripe() -> None:
    db = FakePaymentDatabase()
    installed = _paid(db, installed=True)
    await _schedule(db, _request(installed.order_id))
    gateway = FakeStripeRefunds()
    executor = RefundExecutor(db.unit_of_work, gateway)
    await executor.run_due()
    refund = _only(db)
    assert refund.status == RefundState.CANCELLED and "no longer warranted" in (refund.last_error or "")
    assert installed.status == PaymentStatus.PAID and gateway.calls == []

    unknown = FakePaymentDatabase()
    await _schedule(unknown, _request(uuid.uuid4()))
    await RefundExecutor(unknown.unit_of_work, gateway).run_due()
    assert "not known here" in (_only(unknown).last_error or "") and gateway.calls == []


async def test_a_transient_failure_is_retried_under_the_same_key_and_a_refusal_fails_for_an_operator() -> None:
    db = FakePaymentDatabase()
    payment = _paid(db)
    await _schedule(db, _request(payment.order_id))
    gateway = FakeStripeRefunds()
    gateway.errors.append(_unreachable())
    executor = RefundExecutor(db.unit_of_work, gateway)
    await executor.run_due()
    refund = _only(db)
    assert refund.status == RefundState.EXECUTING and refund.attempts == 1 and refund.lease_until is None
    assert refund.due_at > datetime.now(UTC) and payment.status == PaymentStatus.REFUND_PENDING
    assert await executor.execute(refund.id) == "succeeded"
    assert {key for _, key, _ in gateway.calls} == {f"refund:{payment.order_id}"} and len(gateway.calls) == 2

    refused = FakePaymentDatabase()
    other = _paid(refused)
    await _schedule(refused, _request(other.order_id))
    gateway = FakeStripeRefunds()
    gateway.errors.append(_invalid_request("Injected refusal", http_status=400))
    await RefundExecutor(refused.unit_of_work, gateway).run_due()
    failed = _only(refused)
    assert failed.status == RefundState.FAILED and "Injected refusal" in (failed.last_error or "")
    assert other.status == PaymentStatus.REFUND_PENDING and refused.events(OrderRefunded) == []


async def test_a_duplicate_payments_refund_leaves_the_order_alone_and_an_earlier_refund_is_adopted() -> None:
    db = FakePaymentDatabase()
    payment = _paid(db, failed_at=None)
    await _schedule(db, _request(payment.order_id, kind=RefundKind.DUPLICATE))
    gateway = FakeStripeRefunds()
    gateway.errors.append(_invalid_request("Charge already refunded", http_status=400, code="charge_already_refunded"))
    gateway.existing["pi_b"] = [Refund("re_by_hand", "succeeded", 500, "eur", "pi_b")]
    await RefundExecutor(db.unit_of_work, gateway).run_due()
    refund = _only(db)
    assert refund.status == RefundState.SUCCEEDED and refund.stripe_refund_id == "re_by_hand"
    assert gateway.calls == [("pi_b", f"refund:{payment.order_id}:pi_b", "duplicate")]
    assert payment.status == PaymentStatus.PAID and db.events(OrderRefunded) == []
