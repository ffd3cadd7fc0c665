"""Refunds: scheduled in the transaction that decides them, executed through Stripe afterwards.

The decision and the money movement cannot share a transaction (Stripe is not our database), so a
refund is first a row (``scheduled``, with its idempotency key and due time) committed together with
whatever decided it. ``RefundExecutor`` then runs due rows:

1. one transaction re-checks that the refund is still warranted (a held provisioning refund is
   cancelled if provisioning moved on, see ``domain.refunds``), moves the payment to
   ``refund_pending`` and marks the row ``executing``;
2. Stripe is called with the row's key (``refund:<order_id>`` for the order's payment), so a retry after
   a crash or a lost answer is replayed by Stripe, never repeated; a charge that is already refunded is
   recognised and adopted;
3. one transaction records the Stripe refund, moves the payment to ``refunded`` and stages
   ``OrderRefunded`` (only for the order's own payment, see ``domain.refunds``).

A transient Stripe failure leaves the row ``executing`` with a backoff; a refusal (4xx) marks it
``failed`` and logs an error for an operator. At most one refund per key: the row's unique key, the state
machine and Stripe's idempotency each guarantee it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from spawnpoint_contracts import OrderRefunded, OrderRefundedPayload
from spawnpoint_kit.db import execute_sql
from spawnpoint_kit.logs import get_logger, log_context
from spawnpoint_kit.messaging.outbox import stage_event
from spawnpoint_kit.messaging.topology import Topology

from ..adapters.stripe_gateway import Refund, StripeGateway, is_already_refunded, is_transient
from ..adapters.tables import PaymentRow, RefundRow
from ..domain.payment import PaymentStatus, PaymentTrigger, next_status
from ..domain.refunds import (
    STRIPE_REASON,
    ProvisioningFacts,
    RefundKind,
    RefundReason,
    RefundState,
    order_refund_key,
    refund_warranted,
    retry_delay,
)
from ..metrics import REFUNDS

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


async def schedule(session: AsyncSession, request: RefundRequest) -> bool:
    """Write the refund in the caller's transaction; True if it is (again) scheduled.

    A key that exists already is left alone, unless its refund was cancelled (a held provisioning refund
    superseded by progress): a later failure schedules it again."""
    now = datetime.now(UTC)
    values = {
        "id": uuid.uuid4(),
        "order_id": request.order_id,
        "idempotency_key": request.key,
        "kind": request.kind.value,
        "reason": request.reason.value,
        "status": RefundState.SCHEDULED.value,
        "session_id": request.session_id,
        "payment_intent": request.payment_intent,
        "amount": request.amount,
        "currency": request.currency,
        "cause_at": request.cause_at,
        "due_at": request.due_at,
        "attempts": 0,
        "created_at": now,
        "updated_at": now,
    }
    base = insert(RefundRow).values(**values)
    stmt = base.on_conflict_do_update(
        index_elements=["idempotency_key"],
        set_={
            "status": RefundState.SCHEDULED.value,
            "due_at": base.excluded.due_at,
            "cause_at": base.excluded.cause_at,
            "last_error": None,
            "updated_at": now,
        },
        where=sa.text("refunds.status = 'cancelled'"),
    ).returning(sa.literal(1))
    scheduled = (await session.exec(stmt)).first() is not None
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


async def cancel_provisioning_refund(session: AsyncSession, order_id: uuid.UUID, *, progress_at: datetime) -> int:
    """Provisioning moved on after the failure: a held refund caused by an older failure is cancelled."""
    result = await execute_sql(
        session,
        sa.text(
            "UPDATE refunds SET status = 'cancelled', updated_at = now(), "
            "last_error = 'cancelled: provisioning progressed after the failure' "
            "WHERE idempotency_key = :key AND status = 'scheduled' AND reason = :reason "
            "AND (cause_at IS NULL OR cause_at < :progress_at)"
        ),
        {
            "key": order_refund_key(order_id),
            "reason": RefundReason.PROVISIONING_FAILED.value,
            "progress_at": progress_at,
        },
    )
    count = int(result.rowcount or 0)
    if count:
        REFUNDS.labels(RefundReason.PROVISIONING_FAILED.value, "cancelled").inc(count)
        log.info("held refund cancelled: provisioning progressed", order_id=str(order_id))
    return count


def provisioning_facts(payment: PaymentRow) -> ProvisioningFacts:
    return ProvisioningFacts(
        payment_status=payment.status,
        failed_at=payment.provision_failed_at,
        replayable=payment.provision_failure_replayable,
        progress_at=payment.provision_progress_at,
        installed=payment.server_installed_at is not None,
    )


_CLAIM_DUE = sa.text(
    """
    UPDATE refunds SET lease_until = now() + make_interval(secs => :lease)
    WHERE id IN (
        SELECT id FROM refunds
        WHERE status IN ('scheduled', 'executing') AND due_at <= now()
          AND (lease_until IS NULL OR lease_until < now())
        ORDER BY due_at
        LIMIT :limit
        FOR UPDATE SKIP LOCKED
    )
    RETURNING id
    """
)


class RefundExecutor:
    """Runs due refunds (see the module docstring for the three steps)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], topology: Topology, gateway: StripeGateway) -> None:
        self._sessions = sessions
        self._topology = topology
        self._gateway = gateway

    async def claim_due(self, *, limit: int = 20, lease_seconds: float = 60.0) -> list[uuid.UUID]:
        async with self._sessions() as session:
            rows = (await execute_sql(session, _CLAIM_DUE, {"limit": limit, "lease": lease_seconds})).all()
            await session.commit()
        return [row[0] for row in rows]

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
                refund = await self._call_stripe(prepared)
            except Exception as exc:
                if is_transient(exc):
                    return await self._retry(refund_id, prepared.reason, exc)
                return await self._fail(refund_id, prepared.reason, f"{type(exc).__name__}: {exc}")
            return await self._complete(refund_id, refund)

    async def _prepare(self, refund_id: uuid.UUID) -> RefundRow | None:
        async with self._sessions() as session:
            refund = await session.get(RefundRow, refund_id)
            if refund is None:
                await session.commit()
                return None
            payment = (
                await session.exec(select(PaymentRow).where(PaymentRow.order_id == refund.order_id).with_for_update())
            ).first()
            refund = await session.get(RefundRow, refund_id, with_for_update=True, populate_existing=True)
            if refund is None or refund.status not in (RefundState.SCHEDULED, RefundState.EXECUTING):
                await session.commit()
                return None
            if refund.status == RefundState.SCHEDULED and refund.kind == RefundKind.ORDER:
                why = self._not_going_ahead(payment, refund)
                if why is not None:
                    await self._cancel(session, refund, why)
                    return None
                if payment is not None and payment.status == PaymentStatus.PAID:
                    target = next_status(payment.status, PaymentTrigger.REFUND_REQUESTED)
                    assert target is not None
                    payment.status = target
                    payment.updated_at = datetime.now(UTC)
                    session.add(payment)
            refund.status = RefundState.EXECUTING
            refund.updated_at = datetime.now(UTC)
            session.add(refund)
            await session.commit()
            return refund

    @staticmethod
    def _not_going_ahead(payment: PaymentRow | None, refund: RefundRow) -> str | None:
        """Why an order refund that came due must not run now, or None. A payment already
        ``refund_pending`` was decided before (an earlier run, or an operator re-scheduling a failed one)."""
        if payment is None:
            return "the order is not known here"
        if payment.status == PaymentStatus.REFUND_PENDING:
            return None
        if refund.reason == RefundReason.PROVISIONING_FAILED:
            return None if refund_warranted(provisioning_facts(payment)) else "no longer warranted when due"
        return f"the payment is {payment.status.value}"

    async def _cancel(self, session: AsyncSession, refund: RefundRow, why: str) -> None:
        refund.status = RefundState.CANCELLED
        refund.last_error = f"cancelled: {why}"
        refund.updated_at = datetime.now(UTC)
        session.add(refund)
        await session.commit()
        REFUNDS.labels(refund.reason, "cancelled").inc()
        log.info("refund cancelled", order_id=str(refund.order_id), why=why)

    async def _call_stripe(self, refund: RefundRow) -> Refund:
        assert refund.payment_intent is not None
        try:
            return await self._gateway.refund(
                payment_intent=refund.payment_intent,
                idempotency_key=refund.idempotency_key,
                reason=STRIPE_REASON.get(RefundReason(refund.reason)),
                metadata={"serverOrderId": str(refund.order_id), "reason": refund.reason},
            )
        except Exception as exc:
            if not is_already_refunded(exc):
                raise
            # Refunded before under this very key whose saved answer is gone (keys are pruned after
            # 24 h): adopt the refund that exists rather than failing.
            existing = await self._gateway.refunds_of(refund.payment_intent)
            if not existing:
                raise
            log.warning("charge was already refunded; adopting the existing refund", refund_id=existing[0].id)
            return existing[0]

    async def _retry(self, refund_id: uuid.UUID, reason: str, exc: Exception) -> str:
        async with self._sessions() as session:
            refund = await session.get(RefundRow, refund_id, with_for_update=True)
            if refund is not None:
                refund.attempts += 1
                refund.last_error = f"{type(exc).__name__}: {exc}"[:2000]
                refund.due_at = datetime.now(UTC) + retry_delay(refund.attempts)
                refund.lease_until = None
                refund.updated_at = datetime.now(UTC)
                session.add(refund)
            await session.commit()
        REFUNDS.labels(reason, "retry").inc()
        log.warning("refund failed transiently; will retry", error=repr(exc))
        return RefundState.EXECUTING.value

    async def _fail(self, refund_id: uuid.UUID, reason: str, error: str) -> str:
        async with self._sessions() as session:
            refund = await session.get(RefundRow, refund_id, with_for_update=True)
            if refund is not None:
                refund.status = RefundState.FAILED
                refund.last_error = error[:2000]
                refund.lease_until = None
                refund.updated_at = datetime.now(UTC)
                session.add(refund)
            await session.commit()
        REFUNDS.labels(reason, "failed").inc()
        log.error("refund refused by Stripe; an operator must look at it", error=error)
        return RefundState.FAILED.value

    async def _complete(self, refund_id: uuid.UUID, result: Refund) -> str:
        async with self._sessions() as session:
            refund = await session.get(RefundRow, refund_id)
            assert refund is not None
            payment = (
                await session.exec(select(PaymentRow).where(PaymentRow.order_id == refund.order_id).with_for_update())
            ).first()
            refund = await session.get(RefundRow, refund_id, with_for_update=True, populate_existing=True)
            assert refund is not None
            if refund.status != RefundState.EXECUTING:
                await session.commit()
                return refund.status
            now = datetime.now(UTC)
            refund.status = RefundState.SUCCEEDED
            refund.stripe_refund_id = result.id
            refund.completed_at = refund.updated_at = now
            refund.last_error = None
            session.add(refund)
            if refund.kind == RefundKind.ORDER and payment is not None:
                target = next_status(payment.status, PaymentTrigger.REFUNDED)
                if target is not None:
                    payment.status = target
                    payment.updated_at = now
                    session.add(payment)
                    await stage_event(
                        session,
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
                        ),
                        self._topology,
                    )
            await session.commit()
        REFUNDS.labels(refund.reason, "succeeded").inc()
        log.info("refund succeeded", refund_id=result.id, amount=result.amount, reason=refund.reason)
        return RefundState.SUCCEEDED.value
