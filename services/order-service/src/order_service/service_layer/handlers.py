"""order-service's handler table: what each event on its lifecycle queue does (registered in bootstrap)."""

from __future__ import annotations

from spawnpoint_contracts import OrderExpired, OrderPaid, OrderRefunded, PaymentFailed, PaymentProcessing
from spawnpoint_kit.messaging.handlers import HandlerTable

from .orders import apply_payment_event
from .unit_of_work import OrderUnitOfWork

HANDLERS: HandlerTable[OrderUnitOfWork] = {
    PaymentProcessing: [apply_payment_event],
    OrderPaid: [apply_payment_event],
    OrderExpired: [apply_payment_event],
    PaymentFailed: [apply_payment_event],
    OrderRefunded: [apply_payment_event],
}
"""Payment facts move the order's commercial status (``domain/order.py``'s table)."""
