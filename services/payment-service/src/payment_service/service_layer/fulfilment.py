"""One idempotent fulfilment per order, whoever asks: the webhook worker, the return page, the sweeper.

Callers retrieve the Checkout Session from Stripe first (never trusting an event snapshot for the current
state), then ``Fulfilment.apply`` decides with the pure rule of ``domain.fulfilment`` and applies the
result under the payment's row lock, staging the events in the same transaction: ``OrderPaid`` when the
order becomes paid, ``PaymentProcessing`` for a delayed method, a refund row for money that must go back.
The state machine makes every later call a no-op, so however many events, retries, return-page loads and
concurrent callers arrive, there is at most one ``OrderPaid`` per order.

A webhook event passes its id: the event row is locked and marked processed in that same transaction
(see ``service_layer.webhooks``).

After an order is paid, any other session of the order that is still open is expired, so the customer
cannot pay twice; if Stripe answers that one was completed meanwhile, it is applied too (and refunded as
a duplicate).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from spawnpoint_contracts import (
    OrderExpired,
    OrderExpiredPayload,
    OrderPaid,
    OrderPaidPayload,
    OrderSnapshot,
    PaymentFailed,
    PaymentFailedPayload,
    PaymentProcessing,
    PaymentProcessingPayload,
)
from spawnpoint_kit.logs import get_logger
from spawnpoint_kit.messaging.outbox import stage_event
from spawnpoint_kit.messaging.topology import Topology

from ..adapters.stripe_gateway import CheckoutSession, StripeGateway, not_open_status
from ..adapters.tables import CheckoutSessionRow, PaymentRow
from ..domain.checkout import SessionRowStatus, attempt_is_live
from ..domain.fulfilment import Decision, PaymentFacts, decide
from ..domain.payment import PaymentStatus, PaymentTrigger, next_status
from ..domain.refunds import (
    RefundKind,
    RefundReason,
    duplicate_refund_key,
    order_refund_key,
    reason_for_closed_order,
)
from ..metrics import FULFILMENTS
from . import refunds, webhooks
from .webhooks import RetryLater

log = get_logger(__name__)
PRODUCER = "payment-service"
Channel = Literal["webhook", "return_page", "sweeper"]


@dataclass(frozen=True)
class FulfilmentResult:
    order_id: uuid.UUID
    outcome: str
    status: PaymentStatus


class PaymentMismatch(Exception):
    """The session carries no usable order id."""


def order_id_of(checkout: CheckoutSession) -> uuid.UUID:
    try:
        return uuid.UUID(str(checkout.order_ref))
    except ValueError as exc:
        raise PaymentMismatch(f"session {checkout.id} carries no order id") from exc


async def lock_payment(session: AsyncSession, order_id: uuid.UUID) -> PaymentRow | None:
    return (await session.exec(select(PaymentRow).where(PaymentRow.order_id == order_id).with_for_update())).first()


def _facts(payment: PaymentRow) -> PaymentFacts:
    return PaymentFacts(
        status=payment.status,
        amount=payment.amount,
        currency=payment.currency,
        paid_session_id=payment.paid_session_id,
    )


def _advance(session: AsyncSession, payment: PaymentRow, trigger: PaymentTrigger) -> datetime:
    """Move the payment along the state machine (the caller checked the move is allowed) and return the
    time it changed."""
    target = next_status(payment.status, trigger)
    assert target is not None, f"{payment.status} does not allow {trigger}"
    now = datetime.now(UTC)
    payment.status = target
    payment.updated_at = now
    session.add(payment)
    return now


async def _record_session_status(session: AsyncSession, checkout: CheckoutSession) -> None:
    """Keep our copy of the session's status in step with what Stripe just said."""
    row = (
        await session.exec(select(CheckoutSessionRow).where(CheckoutSessionRow.stripe_session_id == checkout.id))
    ).first()
    if row is not None and checkout.status in ("open", "complete", "expired") and row.status != checkout.status:
        row.status = checkout.status
        session.add(row)


def is_live(row: CheckoutSessionRow, now: datetime) -> bool:
    """The attempt may still take the customer's money (see ``domain.checkout.attempt_is_live``)."""
    return attempt_is_live(row.status, row.expires_at, now)


async def _other_open_sessions(session: AsyncSession, order_id: uuid.UUID, keep: str) -> list[str]:
    """Stripe ids of the order's sessions we know as open, except ``keep``."""
    rows = (
        await session.exec(
            select(CheckoutSessionRow.stripe_session_id).where(
                CheckoutSessionRow.order_id == order_id,
                CheckoutSessionRow.status == SessionRowStatus.OPEN,
                col(CheckoutSessionRow.stripe_session_id).is_not(None),
                CheckoutSessionRow.stripe_session_id != keep,
            )
        )
    ).all()
    return [sid for sid in rows if sid]


class Fulfilment:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], topology: Topology, gateway: StripeGateway) -> None:
        self._sessions = sessions
        self._topology = topology
        self._gateway = gateway

    async def retrieve(self, session_id: str) -> CheckoutSession:
        return await self._gateway.retrieve_checkout_session(session_id)

    async def apply(self, checkout: CheckoutSession, *, via: Channel, event_id: str | None = None) -> FulfilmentResult:
        """Apply a freshly retrieved ``complete`` (or any) session. Raises ``RetryLater`` when the order is
        not known here yet."""
        order_id = order_id_of(checkout)
        async with self._sessions() as session:
            if not await webhooks.claim_in_transaction(session, event_id):
                current = await session.get(PaymentRow, order_id)
                await session.commit()
                status = current.status if current is not None else PaymentStatus.PENDING_PAYMENT
                return FulfilmentResult(order_id, "duplicate_event", status)
            payment = await lock_payment(session, order_id)
            if payment is None:
                raise RetryLater(f"order {order_id} is not known to payment-service yet")
            await _record_session_status(session, checkout)
            decision = decide(_facts(payment), checkout.facts)
            if decision == Decision.FULFIL:
                await self._paid(session, payment, checkout, via)
            elif decision == Decision.PROCESSING:
                await self._processing(session, payment, checkout)
            elif decision == Decision.REFUND_ORDER:
                await self._refund_closed_order(session, payment, checkout)
            elif decision == Decision.REFUND_DUPLICATE:
                await self._refund_duplicate(session, payment, checkout)
            elif decision == Decision.MISMATCH:
                log.error(
                    "session amount or currency does not match the order; not fulfilling",
                    session_id=checkout.id,
                    session_amount=checkout.amount_total,
                    order_amount=payment.amount,
                    session_currency=checkout.currency,
                    order_currency=payment.currency,
                )
            others = await _other_open_sessions(session, order_id, checkout.id) if decision == Decision.FULFIL else []
            await webhooks.mark_processed(session, event_id, decision.value)
            status = payment.status
            await session.commit()
        FULFILMENTS.labels(via, decision.value).inc()
        if decision == Decision.FULFIL:
            log.info("order paid", order_id=str(order_id), session_id=checkout.id, via=via)
            await self._close(others, via=via)
        return FulfilmentResult(order_id, decision.value, status)

    async def _paid(self, session: AsyncSession, payment: PaymentRow, checkout: CheckoutSession, via: Channel) -> None:
        now = _advance(session, payment, PaymentTrigger.PAID)
        payment.paid_session_id = checkout.id
        payment.payment_intent = checkout.payment_intent
        payment.paid_at = now
        payment.fulfilled_via = via
        await stage_event(
            session,
            OrderPaid(
                order_id=payment.order_id,
                correlation_id=payment.correlation_id,
                producer=PRODUCER,
                payload=OrderPaidPayload(
                    session_id=checkout.id,
                    payment_intent=checkout.payment_intent,
                    amount=payment.amount,
                    currency=payment.currency,
                    fulfilled_via=via,
                    order=OrderSnapshot.model_validate(payment.order_snapshot),
                ),
            ),
            self._topology,
        )

    async def _processing(self, session: AsyncSession, payment: PaymentRow, checkout: CheckoutSession) -> None:
        _advance(session, payment, PaymentTrigger.PROCESSING)
        await stage_event(
            session,
            PaymentProcessing(
                order_id=payment.order_id,
                correlation_id=payment.correlation_id,
                producer=PRODUCER,
                payload=PaymentProcessingPayload(session_id=checkout.id),
            ),
            self._topology,
        )

    async def _refund_closed_order(self, session: AsyncSession, payment: PaymentRow, checkout: CheckoutSession) -> None:
        """Money arrived for an order that had already ended unpaid: it is the order's only payment, and
        it goes back (``OrderRefunded`` follows when Stripe confirms)."""
        reason = reason_for_closed_order(payment.status)
        now = _advance(session, payment, PaymentTrigger.REFUND_REQUESTED)
        payment.paid_session_id = checkout.id
        payment.payment_intent = checkout.payment_intent
        log.warning("payment arrived for an order that had ended unpaid; refunding", reason=reason.value)
        await refunds.schedule(
            session,
            refunds.RefundRequest(
                order_id=payment.order_id,
                key=order_refund_key(payment.order_id),
                kind=RefundKind.ORDER,
                reason=reason,
                session_id=checkout.id,
                payment_intent=checkout.payment_intent,
                amount=checkout.amount_total or payment.amount,
                currency=(checkout.currency or payment.currency).lower(),
                due_at=now,
            ),
        )

    async def _refund_duplicate(self, session: AsyncSession, payment: PaymentRow, checkout: CheckoutSession) -> None:
        """A second session of an order that already holds a payment was paid too: return that money."""
        if not checkout.payment_intent:
            log.error("duplicate payment without a PaymentIntent; cannot refund", session_id=checkout.id)
            return
        log.warning("a second payment arrived for the order; refunding it", session_id=checkout.id)
        await refunds.schedule(
            session,
            refunds.RefundRequest(
                order_id=payment.order_id,
                key=duplicate_refund_key(payment.order_id, checkout.payment_intent),
                kind=RefundKind.DUPLICATE,
                reason=RefundReason.DUPLICATE_PAYMENT,
                session_id=checkout.id,
                payment_intent=checkout.payment_intent,
                amount=checkout.amount_total or payment.amount,
                currency=(checkout.currency or payment.currency).lower(),
                due_at=datetime.now(UTC),
            ),
        )

    async def mark_failed(self, checkout: CheckoutSession, *, event_id: str | None = None) -> str:
        """A delayed payment failed for good: PaymentFailed once, nothing provisioned, nothing refunded."""
        order_id = order_id_of(checkout)
        async with self._sessions() as session:
            if not await webhooks.claim_in_transaction(session, event_id):
                await session.commit()
                return "duplicate_event"
            payment = await lock_payment(session, order_id)
            if payment is None:
                raise RetryLater(f"order {order_id} is not known to payment-service yet")
            await _record_session_status(session, checkout)
            outcome = "no_change"
            if next_status(payment.status, PaymentTrigger.FAILED) is not None and payment.paid_session_id is None:
                outcome = "payment_failed"
                _advance(session, payment, PaymentTrigger.FAILED)
                await stage_event(
                    session,
                    PaymentFailed(
                        order_id=order_id,
                        correlation_id=payment.correlation_id,
                        producer=PRODUCER,
                        payload=PaymentFailedPayload(session_id=checkout.id, reason="async_payment_failed"),
                    ),
                    self._topology,
                )
            await webhooks.mark_processed(session, event_id, outcome)
            await session.commit()
        return outcome

    async def mark_expired(self, checkout: CheckoutSession, *, event_id: str | None = None) -> str:
        """The session expired: the order expires too, unless it was paid meanwhile or another of its
        sessions is still live (the customer was handed a replacement)."""
        order_id = order_id_of(checkout)
        async with self._sessions() as session:
            if not await webhooks.claim_in_transaction(session, event_id):
                await session.commit()
                return "duplicate_event"
            payment = await lock_payment(session, order_id)
            if payment is None:
                raise RetryLater(f"order {order_id} is not known to payment-service yet")
            await _record_session_status(session, checkout)
            siblings = (
                await session.exec(
                    select(CheckoutSessionRow).where(
                        CheckoutSessionRow.order_id == order_id,
                        col(CheckoutSessionRow.stripe_session_id).is_distinct_from(checkout.id),
                    )
                )
            ).all()
            now = datetime.now(UTC)
            live_sibling = any(is_live(row, now) for row in siblings)
            outcome = "no_change"
            target = next_status(payment.status, PaymentTrigger.EXPIRED)
            if payment.paid_session_id is None and not live_sibling and target is not None:
                outcome = "expired"
                await self._expire(session, payment, checkout.id, "checkout_session_expired")
            await webhooks.mark_processed(session, event_id, outcome)
            await session.commit()
        return outcome

    async def _expire(self, session: AsyncSession, payment: PaymentRow, session_id: str | None, reason: str) -> None:
        _advance(session, payment, PaymentTrigger.EXPIRED)
        await stage_event(
            session,
            OrderExpired(
                order_id=payment.order_id,
                correlation_id=payment.correlation_id,
                producer=PRODUCER,
                payload=OrderExpiredPayload(session_id=session_id, reason=reason),
            ),
            self._topology,
        )

    async def expire_if_nothing_live(self, order_id: uuid.UUID, now: datetime) -> str:
        """Expire an order still waiting for payment when none of its sessions can take money any more:
        Stripe expired the ones it has, and attempts that never reached the customer are past their
        window (so no expiry event will ever come for them). Used by the sweeper."""
        async with self._sessions() as session:
            payment = await lock_payment(session, order_id)
            if payment is None or payment.status != PaymentStatus.PENDING_PAYMENT:
                await session.commit()
                return "no_change"
            rows = (await session.exec(select(CheckoutSessionRow).where(CheckoutSessionRow.order_id == order_id))).all()
            if not rows or any(is_live(row, now) or row.status == SessionRowStatus.COMPLETE for row in rows):
                await session.commit()
                return "no_change"
            for row in rows:
                if row.status == SessionRowStatus.CREATING:
                    row.status = SessionRowStatus.ABANDONED
                    session.add(row)
            last = max(rows, key=lambda r: r.attempt)
            await self._expire(session, payment, last.stripe_session_id, "checkout_session_expired")
            await session.commit()
        return "expired"

    async def _close(self, session_ids: list[str], *, via: Channel) -> None:
        """Best effort: a failure is logged; the sweeper and Stripe's own expiry close them later. A
        session Stripe reports completed meanwhile is applied (and refunded as a duplicate)."""
        for session_id in session_ids:
            try:
                expired = await self._gateway.expire_checkout_session(session_id)
                await self._store_status(expired.id, expired.status)
            except Exception as exc:
                if not_open_status(exc) is None:
                    log.warning("could not expire another open session of a paid order", session_id=session_id)
                    continue
                checkout = await self.retrieve(session_id)
                if checkout.status == "complete":
                    await self.apply(checkout, via=via)
                else:
                    await self._store_status(checkout.id, checkout.status)

    async def _store_status(self, session_id: str, status: str | None) -> None:
        async with self._sessions() as session:
            row = (
                await session.exec(select(CheckoutSessionRow).where(CheckoutSessionRow.stripe_session_id == session_id))
            ).first()
            if row is not None and status in ("open", "complete", "expired") and row.status != status:
                row.status = status
                session.add(row)
            await session.commit()
