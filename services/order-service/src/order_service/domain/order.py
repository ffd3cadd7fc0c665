"""The order's commercial state machine: an explicit status enum and transition table.

Transitions are driven by events from payment-service. Driven by messages, they are guarded no-ops when
they do not apply (a redelivered OrderPaid changes nothing, a late OrderPaid after an expiry is left to
payment-service's refund), as in eShop's ``SetPaidStatus``. Only forward moves exist.
"""

from __future__ import annotations

from enum import StrEnum

from spawnpoint_kit.state_machine import StateMachine


class OrderStatus(StrEnum):
    PENDING_PAYMENT = "pending_payment"
    PAYMENT_PROCESSING = "payment_processing"
    PAID = "paid"
    EXPIRED = "expired"
    PAYMENT_FAILED = "payment_failed"
    REFUNDED = "refunded"


class Trigger(StrEnum):
    PAYMENT_PROCESSING = "PaymentProcessing"
    PAID = "OrderPaid"
    EXPIRED = "OrderExpired"
    PAYMENT_FAILED = "PaymentFailed"
    REFUNDED = "OrderRefunded"


TRANSITIONS: dict[tuple[OrderStatus, Trigger], OrderStatus] = {
    (OrderStatus.PENDING_PAYMENT, Trigger.PAYMENT_PROCESSING): OrderStatus.PAYMENT_PROCESSING,
    (OrderStatus.PENDING_PAYMENT, Trigger.PAID): OrderStatus.PAID,
    (OrderStatus.PAYMENT_PROCESSING, Trigger.PAID): OrderStatus.PAID,
    (OrderStatus.PENDING_PAYMENT, Trigger.EXPIRED): OrderStatus.EXPIRED,
    (OrderStatus.PAYMENT_PROCESSING, Trigger.PAYMENT_FAILED): OrderStatus.PAYMENT_FAILED,
    (OrderStatus.PENDING_PAYMENT, Trigger.PAYMENT_FAILED): OrderStatus.PAYMENT_FAILED,
    (OrderStatus.PENDING_PAYMENT, Trigger.REFUNDED): OrderStatus.REFUNDED,
    (OrderStatus.PAYMENT_PROCESSING, Trigger.REFUNDED): OrderStatus.REFUNDED,
    (OrderStatus.PAID, Trigger.REFUNDED): OrderStatus.REFUNDED,
    (OrderStatus.EXPIRED, Trigger.REFUNDED): OrderStatus.REFUNDED,
    (OrderStatus.PAYMENT_FAILED, Trigger.REFUNDED): OrderStatus.REFUNDED,
}
"""Every allowed move. Any (status, trigger) pair not listed leaves the order as it is."""

ORDER: StateMachine[OrderStatus, Trigger] = StateMachine("order", TRANSITIONS)
"""The order's machine. Payment facts that do not apply are no-ops (``ORDER.next`` is None), never errors:
events arrive duplicated and out of order."""
