"""The queue the provisioner consumes (its name belongs to the provisioner; the routing keys to the contracts).

Its delay queues (``<queue>.retry.<n>s``) depend on ``PROVISION_RETRY_DELAYS`` and are declared by the
provisioner at start.
"""

from __future__ import annotations

from spawnpoint_contracts import topology as rk
from spawnpoint_kit.messaging.specs import QueueSpec

PROVISIONER_ORDER_PAID = QueueSpec(
    "provisioner.order-paid",
    (rk.ORDER_PAID,),
    delivery_limit=5,
    description="provisioner: a paid order becomes a server.",
)

PROVISIONER_ORDER_REFUNDED = QueueSpec(
    "provisioner.order-refunded",
    (rk.ORDER_REFUNDED,),
    delivery_limit=10,
    description="provisioner: a refunded order gets no server again, and the one it has is suspended.",
)

PROVISIONER_DESIRED_STATE = QueueSpec(
    "provisioner.desired-state",
    (rk.RENTAL_DESIRED_STATE_CHANGED,),
    delivery_limit=10,
    description="provisioner: the panel made to match the rental's desired server state (suspend, unsuspend, "
    "resize, terminate), with delayed retries and a dead-letter queue.",
)

QUEUES = (PROVISIONER_ORDER_PAID, PROVISIONER_ORDER_REFUNDED, PROVISIONER_DESIRED_STATE)
