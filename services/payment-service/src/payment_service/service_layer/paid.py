"""The one moment an order becomes paid, shared by the session's path (``service_layer.fulfilment``) and
the subscription's (``service_layer.rentals``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from spawnpoint_contracts import OrderPaid, OrderPaidPayload, OrderSnapshot

from ..adapters.tables import PaymentRow
from ..domain.payment import PAYMENT, PaymentTrigger
from .unit_of_work import PaymentUnitOfWork

PRODUCER = "payment-service"
Channel = Literal["webhook", "return_page", "sweeper"]


def mark_paid(
    uow: PaymentUnitOfWork, payment: PaymentRow, *, session_id: str, payment_intent: str | None, via: Channel
) -> None:
    """The order is paid: ``OrderPaid`` (the provisioner creates the server), once, guarded by the payment's
    state machine. A fixed-term order's rental starts here too; a subscription's starts when its
    subscription is read (``service_layer.rentals``), whichever of the session and the first invoice
    arrives first."""
    now = datetime.now(UTC)
    PAYMENT.transition(payment, PaymentTrigger.PAID, at=now)
    payment.paid_at = now
    payment.paid_session_id = session_id
    payment.payment_intent = payment_intent
    payment.fulfilled_via = via
    uow.publish(
        OrderPaid(
            order_id=payment.order_id,
            correlation_id=payment.correlation_id,
            producer=PRODUCER,
            payload=OrderPaidPayload(
                session_id=session_id,
                payment_intent=payment_intent,
                amount=payment.amount,
                currency=payment.currency,
                fulfilled_via=via,
                order=OrderSnapshot.model_validate(payment.order_snapshot),
            ),
        )
    )
