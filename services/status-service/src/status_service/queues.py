"""The queue status-service consumes (its name belongs to status-service; the routing keys to the contracts)."""

from __future__ import annotations

from spawnpoint_kit.messaging.specs import QueueSpec

STATUS_PROJECTION = QueueSpec(
    "status-service.projection",
    ("#",),
    delivery_limit=10,
    description="status-service: every event, projected into the customer-facing read model.",
)

QUEUES = (STATUS_PROJECTION,)
