"""Refunds: scheduled in the unit of work that decides them, executed through Stripe afterwards.

The decision and the money movement cannot share a transaction (Stripe is not our database), so a
refund is first a row (``scheduled``, with its idempotency key and due time) committed together with
whatever decided it (``schedule``). ``RefundExecutor`` then runs due rows, in three units of work with the
Stripe call between them:

1. ``_prepare`` re-checks that the refund is still warranted (a held provisioning refund is cancelled if
   provisioning moved on, see ``domain.refunds.why_not_refund_now``), moves the payment to
   ``refund_pending`` and the row to ``executing``;
2. Stripe is called with the row's key (``refund:<order_id>`` for the order's payment), so a retry after
   a crash or a lost answer is replayed by Stripe, never repeated; a charge that is already refunded is
   recognised and adopted;
3. ``_complete`` records the Stripe refund, moves the payment to ``refunded`` and publishes
   ``OrderRefunded`` (only for the order's own payment, see ``domain.refunds``).

A transient Stripe failure leaves the row ``executing`` with a backoff; a refusal (4xx) marks it
``failed`` and logs an error for an operator. Every status change goes through ``REFUND`` and ``PAYMENT``.
At most one refund per key: the row's unique key, the state machines and Stripe's idempotency each
guarantee it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from spawnpoint_contracts import OrderRefunded, OrderRefundedPayload
from spawnpoint_kit.logs import get_logger, log_context

from ..adapters.stripe_gateway import Refund, RefundGateway, is_already_refunded, is_transient
from ..adapters.tables import PaymentRow, RefundRow
from ..domain.payment import PAYMENT, PaymentStatus, PaymentTrigger
from ..domain.refunds import (
    REFUND,
    STRIPE_REASON,
    ProvisioningFacts,
    RefundKind,
    RefundReason,
    RefundState,
    RefundTrigger,
    order_refund_key,
    retry_delay,
    superseded_by_progress,
    why_not_refund_now,
)
from ..metrics import REFUNDS
from .unit_of_work import PaymentUnitOfWork

log = get_logger(__name__)

PRODUCER = "payment-service"


@dataclass(frozen=True)
class RefundRequest:
    order_id: uuid.UUID
    key: str
    kind: RefundKind
    reason: RefundReason
    session_id: str | None
    payment_intent: str | None
    amount: int
    currency: str
    due_at: datetime
    cause_at: datetime | None = None


async def schedule(uow: PaymentUnitOfWork, request: RefundRequest) -> bool:
    """Write the refund in the open unit of work; True if it is (again) scheduled.

    A key that exists already is left alone, unless its refund was cancelled (a held provisioning refund
    superseded by progress): a later failure schedules it again."""
    now = datetime.now(UTC)
    scheduled = await uow.refunds.add(
        RefundRow(
            order_id=request.order_id,
            idempotency_key=request.key,
            kind=request.kind.value,
            reason=request.reason.value,
            status=RefundState.SCHEDULED,
            session_id=request.session_id,
            payment_intent=request.payment_intent,
            amount=request.amount,
            currency=request.currency,
            cause_at=request.cause_at,
            due_at=request.due_at,
            attempts=0,
            created_at=now,
            updated_at=now,
        )
    )
    if not scheduled:
        existing = await uow.refunds.lock_by_key(request.key)
        if existing is not None and REFUND.allows(existing.status, RefundTrigger.SCHEDULE):
            REFUND.transition(existing, RefundTrigger.SCHEDULE, at=now)
            existing.due_at = request.due_at
            existing.cause_at = request.cause_at
            existing.last_error = None
            scheduled = True
    if scheduled:
        REFUNDS.labels(request.reason.value, "scheduled").inc()
        log.info(
            "refund scheduled",
            order_id=str(request.order_id),
            reason=request.reason.value,
            due_at=request.due_at.isoformat(),
            key=request.key,
        )
    return scheduled


async def cancel_provisioning_refund(uow: PaymentUnitOfWork, order_id: uuid.UUID, *, progress_at: datetime) -> int:
    """Provisioning moved on after the failure: a held refund caused by an older failure is cancelled.
    Returns how many were (0 or 1: the order's payment has one key)."""
    refund = await uow.refunds.lock_by_key(order_refund_key(order_id))
    if (
        refund is None
        or not REFUND.allows(refund.status, RefundTrigger.CANCEL)
        or not superseded_by_progress(refund.reason, refund.cause_at, progress_at)
    ):
        return 0
    REFUND.transition(refund, RefundTrigger.CANCEL)
    refund.last_error = "cancelled: provisioning progressed after the failure"
    REFUNDS.labels(RefundReason.PROVISIONING_FAILED.value, "cancelled").inc()
    log.info("held refund cancelled: provisioning progressed", order_id=str(order_id))
    return 1


def provisioning_facts(payment: PaymentRow) -> ProvisioningFacts:
    return ProvisioningFacts(
        payment_status=payment.status,
        failed_at=payment.provision_failed_at,
        replayable=payment.provision_failure_replayable,
        progress_at=payment.provision_progress_at,
        installed=payment.server_installed_at is not None,
    )


@dataclass(frozen=True)
class _Prepared:
    """What the Stripe call needs from a refund that is now ``executing``."""

    order_id: uuid.UUID
    idempotency_key: str
    reason: str
    payment_intent: str | None


class RefundExecutor:
    """Runs due refunds (see the module docstring for the three steps)."""

    def __init__(self, unit_of_work: Callable[[], PaymentUnitOfWork], gateway: RefundGateway) -> None:
        self._unit_of_work = unit_of_work
        self._gateway = gateway

    async def claim_due(self, *, limit: int = 20, lease_seconds: float = 60.0) -> list[uuid.UUID]:
        uow = self._unit_of_work()
        async with uow:
            due = await uow.refunds.claim_due(limit=limit, lease_seconds=lease_seconds)
            await uow.commit()
        return due

    async def run_due(self, *, limit: int = 20) -> int:
        """Execute every due refund once; the number handled."""
        handled = 0
        for refund_id in await self.claim_due(limit=limit):
            await self.execute(refund_id)
            handled += 1
        return handled

    async def execute(self, refund_id: uuid.UUID) -> str:
        """Carry one refund as far as it can go now; returns its state afterwards."""
        prepared = await self._prepare(refund_id)
        if prepared is None:
            return "skipped"
        with log_context(order_id=prepared.order_id, refund_key=prepared.idempotency_key):
            if not prepared.payment_intent:
                return await self._fail(refund_id, prepared.reason, "no PaymentIntent to refund")
            try:
                refund = await self._call_stripe(prepared, prepared.payment_intent)
            except Exception as exc:
                if is_transient(exc):
                    return await self._retry(refund_id, prepared.reason, exc)
                return await self._fail(refund_id, prepared.reason, f"{type(exc).__name__}: {exc}")
            return await self._complete(refund_id, refund)

    async def _prepare(self, refund_id: uuid.UUID) -> _Prepared | None:
        uow = self._unit_of_work()
        async with uow:
            first = await uow.refunds.get(refund_id)
            if first is None:
                await uow.commit()
                return None
            payment = await uow.payments.lock(first.order_id)  # the payment first, as everything else locks it
            refund = await uow.refunds.lock(refund_id)
            if refund is None or not REFUND.allows(refund.status, RefundTrigger.EXECUTE):
                await uow.commit()
                return None
            if refund.status == RefundState.SCHEDULED and refund.kind == RefundKind.ORDER:
                why = why_not_refund_now(provisioning_facts(payment) if payment is not None else None, refund.reason)
                if why is not None:
                    REFUND.transition(refund, RefundTrigger.CANCEL)
                    refund.last_error = f"cancelled: {why}"
                    await uow.commit()
                    REFUNDS.labels(refund.reason, "cancelled").inc()
                    log.info("refund cancelled", order_id=str(refund.order_id), why=why)
                    return None
                if payment is not None and payment.status == PaymentStatus.PAID:
                    PAYMENT.transition(payment, PaymentTrigger.REFUND_REQUESTED)
            REFUND.transition(refund, RefundTrigger.EXECUTE)
            prepared = _Prepared(
                order_id=refund.order_id,
                idempotency_key=refund.idempotency_key,
                reason=refund.reason,
                payment_intent=refund.payment_intent,
            )
            await uow.commit()
        return prepared

    async def _call_stripe(self, refund: _Prepared, payment_intent: str) -> Refund:
        try:
            return await self._gateway.refund(
                payment_intent=payment_intent,
                idempotency_key=refund.idempotency_key,
                reason=STRIPE_REASON.get(RefundReason(refund.reason)),
                metadata={"serverOrderId": str(refund.order_id), "reason": refund.reason},
            )
        except Exception as exc:
            if not is_already_refunded(exc):
                raise
            # Refunded before under this very key whose saved answer is gone (keys are pruned after
            # 24 h): adopt the refund that exists rather than failing.
            existing = await self._gateway.refunds_of(payment_intent)
            if not existing:
                raise
            log.warning("charge was already refunded; adopting the existing refund", refund_id=existing[0].id)
            return existing[0]

    async def _retry(self, refund_id: uuid.UUID, reason: str, exc: Exception) -> str:
        uow = self._unit_of_work()
        async with uow:
            refund = await uow.refunds.lock(refund_id)
            if refund is not None:
                refund.attempts += 1
                refund.last_error = f"{type(exc).__name__}: {exc}"[:2000]
                refund.due_at = datetime.now(UTC) + retry_delay(refund.attempts)
                refund.lease_until = None
                refund.updated_at = datetime.now(UTC)
            await uow.commit()
        REFUNDS.labels(reason, "retry").inc()
        log.warning("refund failed transiently; will retry", error=repr(exc))
        return RefundState.EXECUTING.value

    async def _fail(self, refund_id: uuid.UUID, reason: str, error: str) -> str:
        uow = self._unit_of_work()
        async with uow:
            refund = await uow.refunds.lock(refund_id)
            if refund is not None and REFUND.allows(refund.status, RefundTrigger.FAIL):
                REFUND.transition(refund, RefundTrigger.FAIL)
                refund.last_error = error[:2000]
                refund.lease_until = None
            await uow.commit()
        REFUNDS.labels(reason, "failed").inc()
        log.error("refund refused by Stripe; an operator must look at it", error=error)
        return RefundState.FAILED.value

    async def _complete(self, refund_id: uuid.UUID, result: Refund) -> str:
        uow = self._unit_of_work()
        async with uow:
            first = await uow.refunds.get(refund_id)
            if first is None:
                raise RuntimeError(f"refund {refund_id} vanished while it was executing")
            payment = await uow.payments.lock(first.order_id)
            refund = await uow.refunds.lock(refund_id)
            if refund is None:
                raise RuntimeError(f"refund {refund_id} vanished while it was executing")
            if not REFUND.allows(refund.status, RefundTrigger.SUCCEED):
                await uow.commit()
                return refund.status.value
            now = datetime.now(UTC)
            REFUND.transition(refund, RefundTrigger.SUCCEED, at=now)
            refund.stripe_refund_id = result.id
            refund.completed_at = now
            refund.last_error = None
            if (
                refund.kind == RefundKind.ORDER
                and payment is not None
                and PAYMENT.allows(payment.status, PaymentTrigger.REFUNDED)
            ):
                PAYMENT.transition(payment, PaymentTrigger.REFUNDED, at=now)
                uow.publish(
                    OrderRefunded(
                        order_id=refund.order_id,
                        correlation_id=payment.correlation_id,
                        producer=PRODUCER,
                        payload=OrderRefundedPayload(
                            refund_id=result.id,
                            amount=result.amount or refund.amount,
                            currency=(result.currency or refund.currency).lower(),
                            reason=refund.reason,
                        ),
                    )
                )
            reason = refund.reason
            await uow.commit()
        REFUNDS.labels(reason, "succeeded").inc()
        log.info("refund succeeded", refund_id=result.id, amount=result.amount, reason=reason)
        return RefundState.SUCCEEDED.value
