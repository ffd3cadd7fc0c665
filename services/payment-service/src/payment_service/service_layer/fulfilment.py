"""One idempotent fulfilment per order, whoever asks: the webhook worker, the return page, the sweeper.

It re-retrieves the Checkout Session from Stripe (never trusting an event snapshot for the current
state), checks ``payment_status`` and that amount and currency match the order, then moves the payment
forward under a row lock and stages OrderPaid in the same transaction. The state machine makes every
later call a no-op, so however many events, retries, return-page loads and concurrent callers arrive,
there is exactly one OrderPaid per order.
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

from ..adapters.stripe_gateway import CheckoutSession
from ..adapters.tables import CheckoutSessionRow, PaymentRow
from ..domain.payment import PaymentStatus, PaymentTrigger, next_status
from .webhooks import RetryLater

log = get_logger(__name__)
PRODUCER = "payment-service"
Channel = Literal["webhook", "return_page", "sweeper"]


@dataclass(frozen=True)
class FulfilmentResult:
    outcome: Literal["fulfilled", "already_paid", "not_paid", "ignored", "mismatch"]
    status: PaymentStatus


class PaymentMismatch(Exception):
    """Stripe's session does not match the order (amount or currency): never fulfil it."""


async def _locked_payment(session: AsyncSession, order_id: uuid.UUID) -> PaymentRow | None:
    return (await session.exec(select(PaymentRow).where(PaymentRow.order_id == order_id).with_for_update())).first()


def _order_id_of(checkout: CheckoutSession) -> uuid.UUID:
    try:
        return uuid.UUID(str(checkout.order_ref))
    except ValueError as exc:
        raise PaymentMismatch(f"session {checkout.id} carries no order id") from exc


async def _mark_session(session: AsyncSession, checkout: CheckoutSession) -> None:
    row = (
        await session.exec(select(CheckoutSessionRow).where(CheckoutSessionRow.stripe_session_id == checkout.id))
    ).first()
    if row is not None and checkout.status and row.status != checkout.status:
        row.status = checkout.status
        session.add(row)


async def fulfil(
    sessions: async_sessionmaker[AsyncSession],
    topology: Topology,
    checkout: CheckoutSession,
    *,
    via: Channel,
) -> FulfilmentResult:
    """Apply a freshly retrieved session: OrderPaid once if it is paid, PaymentProcessing if the payment
    is delayed. Raises ``RetryLater`` when the order is not known here yet."""
    order_id = _order_id_of(checkout)
    async with sessions() as session:
        payment = await _locked_payment(session, order_id)
        if payment is None:
            raise RetryLater(f"order {order_id} is not known to payment-service yet")
        await _mark_session(session, checkout)
        if checkout.status != "complete":
            await session.commit()
            return FulfilmentResult("not_paid", payment.status)
        if checkout.amount_total != payment.amount or (checkout.currency or "").lower() != payment.currency:
            log.error(
                "session amount or currency does not match the order; not fulfilling",
                session_amount=checkout.amount_total,
                order_amount=payment.amount,
                session_currency=checkout.currency,
            )
            await session.commit()
            return FulfilmentResult("mismatch", payment.status)
        if checkout.payment_status != "paid":
            target = next_status(payment.status, PaymentTrigger.PROCESSING)
            if target is not None:
                payment.status = target
                payment.updated_at = datetime.now(UTC)
                session.add(payment)
                await stage_event(
                    session,
                    PaymentProcessing(
                        order_id=order_id,
                        correlation_id=payment.correlation_id,
                        producer=PRODUCER,
                        payload=PaymentProcessingPayload(session_id=checkout.id),
                    ),
                    topology,
                )
            await session.commit()
            return FulfilmentResult("not_paid", payment.status)
        target = next_status(payment.status, PaymentTrigger.PAID)
        if target is None:
            await session.commit()
            return FulfilmentResult("already_paid", payment.status)
        payment.status = target
        payment.paid_session_id = checkout.id
        payment.payment_intent = checkout.payment_intent
        payment.paid_at = datetime.now(UTC)
        payment.fulfilled_via = via
        payment.updated_at = payment.paid_at
        session.add(payment)
        await stage_event(
            session,
            OrderPaid(
                order_id=order_id,
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
            topology,
        )
        await session.commit()
    log.info("order paid", order_id=str(order_id), session_id=checkout.id, via=via)
    return FulfilmentResult("fulfilled", PaymentStatus.PAID)


async def mark_failed(
    sessions: async_sessionmaker[AsyncSession], topology: Topology, checkout: CheckoutSession
) -> PaymentStatus:
    """A delayed payment failed for good: PaymentFailed once, nothing provisioned, nothing refunded."""
    order_id = _order_id_of(checkout)
    async with sessions() as session:
        payment = await _locked_payment(session, order_id)
        if payment is None:
            raise RetryLater(f"order {order_id} is not known to payment-service yet")
        target = next_status(payment.status, PaymentTrigger.FAILED)
        if target is not None:
            payment.status = target
            payment.updated_at = datetime.now(UTC)
            session.add(payment)
            await stage_event(
                session,
                PaymentFailed(
                    order_id=order_id,
                    correlation_id=payment.correlation_id,
                    producer=PRODUCER,
                    payload=PaymentFailedPayload(session_id=checkout.id, reason="async_payment_failed"),
                ),
                topology,
            )
        await session.commit()
        return payment.status


async def mark_expired(
    sessions: async_sessionmaker[AsyncSession], topology: Topology, checkout: CheckoutSession
) -> PaymentStatus:
    """The session expired: the order expires too, but only if it was not paid meanwhile."""
    order_id = _order_id_of(checkout)
    async with sessions() as session:
        payment = await _locked_payment(session, order_id)
        if payment is None:
            raise RetryLater(f"order {order_id} is not known to payment-service yet")
        await _mark_session(session, checkout)
        newer_open = (
            await session.exec(
                select(CheckoutSessionRow).where(
                    CheckoutSessionRow.order_id == order_id,
                    CheckoutSessionRow.stripe_session_id != checkout.id,
                    col(CheckoutSessionRow.status).in_(("open", "creating")),
                )
            )
        ).first()
        if payment.paid_session_id is None and newer_open is None:
            target = next_status(payment.status, PaymentTrigger.EXPIRED)
            if target is not None:
                payment.status = target
                payment.updated_at = datetime.now(UTC)
                session.add(payment)
                await stage_event(
                    session,
                    OrderExpired(
                        order_id=order_id,
                        correlation_id=payment.correlation_id,
                        producer=PRODUCER,
                        payload=OrderExpiredPayload(session_id=checkout.id),
                    ),
                    topology,
                )
        await session.commit()
        return payment.status
