"""Every consumer queue of the system, in one place (names without the namespace prefix).

Each service declares all of them at start (see ``Topology.declare``), so no event is ever published
while a consumer's queue is missing.
"""

from __future__ import annotations

from spawnpoint_contracts import topology as rk

from .topology import QueueSpec

ORDER_LIFECYCLE = QueueSpec(
    "order-service.lifecycle",
    (rk.PAYMENT_PROCESSING, rk.ORDER_PAID, rk.ORDER_EXPIRED, rk.PAYMENT_FAILED, rk.ORDER_REFUNDED),
    delivery_limit=10,
)
"""order-service keeps its order's commercial status up to date."""

PROVISIONER_ORDER_PAID = QueueSpec("provisioner.order-paid", (rk.ORDER_PAID,), delivery_limit=5)
"""provisioner: a paid order becomes a server."""

PAYMENT_PROVISION_FAILED = QueueSpec(
    "payment-service.provision-failed",
    (rk.PROVISION_FAILED, rk.SERVER_CREATED, rk.SERVER_INSTALLED, rk.PROVISIONING_REPLAYED),
    delivery_limit=10,
)
"""payment-service: refunds for provisioning that cannot succeed. The progress events let a held refund be
cancelled when an operator's replay succeeds."""

STATUS_PROJECTION = QueueSpec("status-service.projection", ("#",), delivery_limit=10)
"""status-service: every event, projected into the customer-facing read model."""

ALL_QUEUES: tuple[QueueSpec, ...] = (
    ORDER_LIFECYCLE,
    PROVISIONER_ORDER_PAID,
    PAYMENT_PROVISION_FAILED,
    STATUS_PROJECTION,
)
