"""The return page's question: what happened to my checkout? (``GET /checkout-sessions/{id}/status``)

Stripe sends the customer back to ``return_url`` with the session id. The page asks here: the session is
retrieved from Stripe, and if it is complete the one fulfilment runs at once, so a customer whose webhook
is late (or lost) sees "paid" and provisioning starts without waiting for it. Only the order's owner may
ask; anyone else, like an unknown session id, gets 404.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from ..adapters.tables import CheckoutSessionRow, PaymentRow
from ..domain.payment import PaymentStatus
from .fulfilment import Fulfilment


class SessionNotFound(Exception):
    """No such session for this caller."""


@dataclass(frozen=True)
class SessionStatusView:
    session_id: str
    order_id: uuid.UUID
    session_status: str | None
    payment_status: str | None
    order_status: PaymentStatus
    fulfilment: str | None


async def session_status(
    sessions: async_sessionmaker[AsyncSession], fulfilment: Fulfilment, session_id: str, *, user_id: str
) -> SessionStatusView:
    async with sessions() as session:
        row = (
            await session.exec(select(CheckoutSessionRow).where(CheckoutSessionRow.stripe_session_id == session_id))
        ).first()
        payment = await session.get(PaymentRow, row.order_id) if row is not None else None
        if row is None or payment is None or payment.user_id != user_id:
            raise SessionNotFound(session_id)
        order_id = payment.order_id
    checkout = await fulfilment.retrieve(session_id)
    outcome: str | None = None
    if checkout.status == "complete":
        outcome = (await fulfilment.apply(checkout, via="return_page")).outcome
    async with sessions() as session:
        current = await session.get(PaymentRow, order_id)
        assert current is not None
        status = current.status
    return SessionStatusView(
        session_id=checkout.id,
        order_id=order_id,
        session_status=checkout.status,
        payment_status=checkout.payment_status,
        order_status=status,
        fulfilment=outcome,
    )
