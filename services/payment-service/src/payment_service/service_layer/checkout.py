"""Opening a Checkout Session for an order: one open session per order.

The order is read from order-service with the customer's own token, so ownership is order-service's
rule and the amount comes from the order, never from the client. A repeated request (double click, page
reload) gets the open session's ``client_secret`` back. Every parameter sent to Stripe, including the
computed ``expires_at``, is stored before the call under a stable idempotency key, so a retry after a
crash or a timeout re-sends exactly the same request and Stripe answers with the same session.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from spawnpoint_contracts import OrderSnapshot
from spawnpoint_kit.logs import get_logger

from ..adapters.order_client import OrderView
from ..adapters.stripe_gateway import StripeGateway
from ..adapters.tables import CheckoutSessionRow, PaymentRow
from ..domain.payment import OPEN_FOR_CHECKOUT, PaymentStatus

log = get_logger(__name__)

REUSE_MARGIN = timedelta(minutes=2)
"""An open session that expires sooner than this is replaced rather than handed out again."""


@dataclass(frozen=True)
class CheckoutConfig:
    return_url: str
    expiry: timedelta


@dataclass(frozen=True)
class OpenedCheckout:
    order_id: uuid.UUID
    session_id: str
    client_secret: str
    expires_at: datetime
    reused: bool


class NotPayable(Exception):
    """The order is not waiting for payment (already paid, expired, failed or refunded)."""

    def __init__(self, status: PaymentStatus) -> None:
        super().__init__(f"order is {status.value}")
        self.status = status


def session_params(snapshot: OrderSnapshot, config: CheckoutConfig, expires_at: datetime) -> dict[str, Any]:
    """The exact Stripe parameters for the order's session (all of them are stored before the call)."""
    order_id = str(snapshot.order_id)
    return {
        "mode": "payment",
        "ui_mode": "embedded_page",
        "line_items": [
            {
                "price_data": {
                    "currency": snapshot.currency,
                    "unit_amount": snapshot.amount,
                    "product_data": {
                        "name": f"{snapshot.game_name} – {snapshot.plan_name}",
                        "metadata": {"game_id": snapshot.game_id, "plan_id": snapshot.plan_id},
                    },
                },
                "quantity": 1,
            }
        ],
        "metadata": {"serverOrderId": order_id},
        "client_reference_id": order_id,
        "payment_intent_data": {"metadata": {"serverOrderId": order_id}},
        "return_url": config.return_url,
        "expires_at": int(expires_at.timestamp()),
        "customer_email": snapshot.email,
    }


async def _lock_payment(session: AsyncSession, order: OrderView) -> PaymentRow:
    snap = order.snapshot
    await session.exec(
        insert(PaymentRow)
        .values(
            order_id=snap.order_id,
            user_id=snap.user_id,
            email=snap.email,
            amount=snap.amount,
            currency=snap.currency,
            status=PaymentStatus.PENDING_PAYMENT,
            order_snapshot=snap.model_dump(mode="json"),
            correlation_id=order.correlation_id,
            created_at=datetime.now(UTC),
            updated_at=datetime.now(UTC),
        )
        .on_conflict_do_nothing(index_elements=["order_id"])
    )
    payment = (
        await session.exec(select(PaymentRow).where(PaymentRow.order_id == snap.order_id).with_for_update())
    ).one()
    return payment


async def open_checkout(
    sessions: async_sessionmaker[AsyncSession],
    gateway: StripeGateway,
    config: CheckoutConfig,
    order: OrderView,
) -> OpenedCheckout:
    now = datetime.now(UTC)
    async with sessions() as session:
        payment = await _lock_payment(session, order)
        if payment.status not in OPEN_FOR_CHECKOUT:
            raise NotPayable(payment.status)
        latest = (
            await session.exec(
                select(CheckoutSessionRow)
                .where(CheckoutSessionRow.order_id == payment.order_id)
                .order_by(col(CheckoutSessionRow.attempt).desc())
                .limit(1)
            )
        ).first()
        if (
            latest is not None
            and latest.status == "open"
            and latest.client_secret
            and latest.stripe_session_id
            and latest.expires_at - REUSE_MARGIN > now
        ):
            return OpenedCheckout(
                order_id=payment.order_id,
                session_id=latest.stripe_session_id,
                client_secret=latest.client_secret,
                expires_at=latest.expires_at,
                reused=True,
            )
        if latest is not None and latest.status == "creating":
            row = latest  # a previous attempt did not finish: re-send it unchanged
        else:
            attempt = (latest.attempt + 1) if latest is not None else 1
            expires_at = (now + config.expiry).replace(microsecond=0)
            row = CheckoutSessionRow(
                order_id=payment.order_id,
                attempt=attempt,
                idempotency_key=f"checkout-session:{payment.order_id}:{attempt}",
                params=session_params(order.snapshot, config, expires_at),
                expires_at=expires_at,
            )
            session.add(row)
        await session.commit()
        row_id, params, key = row.id, row.params, row.idempotency_key

    created = await gateway.create_checkout_session(params, idempotency_key=key)
    if not created.client_secret:
        raise RuntimeError("Stripe returned a session without a client_secret")
    async with sessions() as session:
        stored = await session.get(CheckoutSessionRow, row_id)
        assert stored is not None
        stored.stripe_session_id = created.id
        stored.client_secret = created.client_secret
        stored.status = "open" if created.status in (None, "open") else str(created.status)
        session.add(stored)
        await session.commit()
        expires_at = stored.expires_at
    log.info("checkout session opened", order_id=str(order.snapshot.order_id), session_id=created.id)
    return OpenedCheckout(
        order_id=order.snapshot.order_id,
        session_id=created.id,
        client_secret=created.client_secret,
        expires_at=expires_at,
        reused=False,
    )
