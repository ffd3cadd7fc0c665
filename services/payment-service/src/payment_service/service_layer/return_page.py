"""The return page's question: what happened to my checkout? (``GET /checkout-sessions/{id}/status``)

Stripe sends the customer back to ``return_url`` with the session id. The page asks here: the session is
retrieved from Stripe, and if it is complete the one fulfilment runs at once, so a customer whose webhook
is late (or lost) sees "paid" and provisioning starts without waiting for it. Only the order's owner may
ask; anyone else, like an unknown session id, gets 404.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from ..domain.payment import PaymentStatus
from .fulfilment import Fulfilment
from .unit_of_work import PaymentUnitOfWork


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
    uow: PaymentUnitOfWork, fulfilment: Fulfilment, session_id: str, *, user_id: str
) -> SessionStatusView:
    """The session's state for its owner; ``SessionNotFound`` for anyone else and for an unknown id."""
    async with uow:
        row = await uow.checkout_sessions.by_stripe_id(session_id)
        payment = await uow.payments.get(row.order_id) if row is not None else None
        if row is None or payment is None or payment.user_id != user_id:
            raise SessionNotFound(session_id)
        order_id = payment.order_id
    checkout = await fulfilment.retrieve(session_id)
    outcome: str | None = None
    if checkout.status == "complete":
        outcome = (await fulfilment.apply(checkout, via="return_page")).outcome
    async with uow:
        current = await uow.payments.get(order_id)
        if current is None:
            raise SessionNotFound(session_id)
        status = current.status
    return SessionStatusView(
        session_id=checkout.id,
        order_id=order_id,
        session_status=checkout.status,
        payment_status=checkout.payment_status,
        order_status=status,
        fulfilment=outcome,
    )
