"""Facts about an order's commercial life: created, paid, expired, refunded."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from ..envelope import Event, WireModel
from ..models import OrderSnapshot


class OrderCreatedPayload(WireModel):
    order: OrderSnapshot


class OrderCreated(Event):
    """The customer placed an order; it waits for payment."""

    routing_key: ClassVar[str] = "order.created.v1"
    event_type: Literal["OrderCreated"] = "OrderCreated"
    event_version: Literal[1] = 1
    payload: OrderCreatedPayload


class OrderPaidPayload(WireModel):
    session_id: str = Field(description="The Stripe Checkout Session that was paid.")
    payment_intent: str | None = None
    amount: int = Field(ge=0)
    currency: str = Field(min_length=3, max_length=3)
    fulfilled_via: Literal["webhook", "return_page", "sweeper"] = "webhook"
    order: OrderSnapshot


class OrderPaid(Event):
    """Stripe confirmed the payment; the server may now be created. Emitted at most once per order."""

    routing_key: ClassVar[str] = "order.paid.v1"
    event_type: Literal["OrderPaid"] = "OrderPaid"
    event_version: Literal[1] = 1
    payload: OrderPaidPayload


class OrderExpiredPayload(WireModel):
    session_id: str | None = None
    reason: str = "checkout_session_expired"


class OrderExpired(Event):
    """The payment window closed before the order was paid."""

    routing_key: ClassVar[str] = "order.expired.v1"
    event_type: Literal["OrderExpired"] = "OrderExpired"
    event_version: Literal[1] = 1
    payload: OrderExpiredPayload


class OrderRefundedPayload(WireModel):
    refund_id: str
    amount: int = Field(ge=0)
    currency: str = Field(min_length=3, max_length=3)
    reason: str = Field(description="Why: provisioning_failed, duplicate_payment, paid_after_expiry, ...")


class OrderRefunded(Event):
    """The customer's money was returned through Stripe."""

    routing_key: ClassVar[str] = "order.refunded.v1"
    event_type: Literal["OrderRefunded"] = "OrderRefunded"
    event_version: Literal[1] = 1
    payload: OrderRefundedPayload
