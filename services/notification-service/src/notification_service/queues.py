"""The queue notification-service consumes: every event a customer (or the operator) is told about, and
the ones that tell it who the customer is (the order's snapshot) and which server they have."""

from __future__ import annotations

from spawnpoint_contracts import topology as rk
from spawnpoint_kit.messaging.specs import QueueSpec

NOTIFICATION_EVENTS = QueueSpec(
    "notification-service.events",
    (
        rk.ORDER_CREATED,
        rk.ORDER_PAID,
        rk.ORDER_REFUNDED,
        rk.SERVER_CREATED,
        rk.SERVER_INSTALLED,
        rk.PROVISION_FAILED,
        rk.RENTAL_CHANGED,
        rk.SERVER_SUSPENDED,
        rk.SERVER_UNSUSPENDED,
        rk.SERVER_TERMINATED,
    ),
    delivery_limit=10,
    description="notification-service: the events customers are e-mailed about, recorded as messages to send; "
    "an e-mail the SMTP server refused for good is dead-lettered here with the server's reply.",
)

QUEUES = (NOTIFICATION_EVENTS,)
