"""The whole system as an operator sees it: every service's queues, composed in one place.

Each service owns the queues it consumes (``<service>/queues.py``, light modules without a broker
library). ``spawnctl dlq`` offers every one of them; the development stack and the generated broker
definitions (``scripts/system_topology.py``) declare exactly this list.
"""

from __future__ import annotations

from notification_service.queues import QUEUES as NOTIFICATION_QUEUES
from order_service.queues import QUEUES as ORDER_QUEUES
from payment_service.queues import QUEUES as PAYMENT_QUEUES
from provisioner.queues import PROVISIONER_ORDER_PAID
from provisioner.queues import QUEUES as PROVISIONER_QUEUES
from spawnpoint_kit.messaging.specs import QueueSpec
from status_service.queues import QUEUES as STATUS_QUEUES

ALL_QUEUES: tuple[QueueSpec, ...] = (
    *ORDER_QUEUES,
    *PROVISIONER_QUEUES,
    *PAYMENT_QUEUES,
    *STATUS_QUEUES,
    *NOTIFICATION_QUEUES,
)
"""Every consumer queue of the system, in the order the generated documents list them."""

DEFAULT_DLQ_QUEUE = PROVISIONER_ORDER_PAID.name
"""The queue ``spawnctl dlq`` opens when ``--queue`` is not given: where paid orders wait for an operator."""
