"""Facts about a payment that did not (yet) become OrderPaid."""

from __future__ import annotations

from typing import ClassVar, Literal

from ..envelope import Event, WireModel


class PaymentProcessingPayload(WireModel):
    session_id: str


class PaymentProcessing(Event):
    """Checkout completed with a delayed payment method; the money has not arrived yet."""

    routing_key: ClassVar[str] = "payment.processing.v1"
    event_type: Literal["PaymentProcessing"] = "PaymentProcessing"
    event_version: Literal[1] = 1
    payload: PaymentProcessingPayload


class PaymentFailedPayload(WireModel):
    session_id: str | None = None
    reason: str = "async_payment_failed"


class PaymentFailed(Event):
    """The payment failed for good (for example a bank debit that bounced); nothing is provisioned."""

    routing_key: ClassVar[str] = "payment.failed.v1"
    event_type: Literal["PaymentFailed"] = "PaymentFailed"
    event_version: Literal[1] = 1
    payload: PaymentFailedPayload
