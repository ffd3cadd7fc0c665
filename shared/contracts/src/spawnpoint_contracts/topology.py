"""Names on the wire: the exchanges and routing keys. Queue names belong to each consumer.

Routing keys follow ``<aggregate>.<fact>.v<N>``. A breaking change to an event is a new version with a
new routing key, published beside the old one while consumers migrate.
"""

from __future__ import annotations

EVENTS_EXCHANGE = "spawnpoint.events"
"""Durable topic exchange every event is published to."""

DEAD_LETTER_EXCHANGE = "spawnpoint.dlx"
"""Direct exchange that routes a dead-lettered message to ``<queue>.dlq`` by the source queue's name."""

ORDER_CREATED = "order.created.v1"
ORDER_PAID = "order.paid.v1"
ORDER_EXPIRED = "order.expired.v1"
ORDER_REFUNDED = "order.refunded.v1"
PAYMENT_PROCESSING = "payment.processing.v1"
PAYMENT_FAILED = "payment.failed.v1"
SERVER_CREATED = "server.created.v1"
SERVER_INSTALLED = "server.installed.v1"
PROVISION_FAILED = "provisioning.failed.v1"
PROVISIONING_RETRY_SCHEDULED = "provisioning.retry_scheduled.v1"
PROVISIONING_REPLAYED = "provisioning.replayed.v1"
RENTAL_CHANGED = "rental.changed.v1"
RENTAL_DESIRED_STATE_CHANGED = "rental.desired_state_changed.v1"
SERVER_SUSPENDED = "server.suspended.v1"
SERVER_UNSUSPENDED = "server.unsuspended.v1"
SERVER_RESIZED = "server.resized.v1"
SERVER_TERMINATED = "server.terminated.v1"
SERVER_ACTION_FAILED = "server.action_failed.v1"
NOTIFICATION_SENT = "notification.sent.v1"
