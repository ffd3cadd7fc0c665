"""The queue payment-service consumes (its name belongs to payment-service; the routing keys to the contracts)."""

from __future__ import annotations

from spawnpoint_contracts import topology as rk
from spawnpoint_kit.messaging.specs import QueueSpec

PAYMENT_PROVISION_FAILED = QueueSpec(
    "payment-service.provision-failed",
    (rk.PROVISION_FAILED, rk.SERVER_CREATED, rk.SERVER_INSTALLED, rk.PROVISIONING_REPLAYED),
    delivery_limit=10,
    description="payment-service: refunds for provisioning that cannot succeed. The progress events let a held "
    "refund be cancelled when an operator's replay succeeds.",
)

QUEUES = (PAYMENT_PROVISION_FAILED,)
