"""The queue order-service consumes (its name belongs to order-service; the routing keys to the contracts)."""

from __future__ import annotations

from spawnpoint_contracts import topology as rk
from spawnpoint_kit.messaging.specs import QueueSpec

ORDER_LIFECYCLE = QueueSpec(
    "order-service.lifecycle",
    (rk.PAYMENT_PROCESSING, rk.ORDER_PAID, rk.ORDER_EXPIRED, rk.PAYMENT_FAILED, rk.ORDER_REFUNDED),
    delivery_limit=10,
    description="order-service keeps its order's commercial status up to date.",
)

QUEUES = (ORDER_LIFECYCLE,)
