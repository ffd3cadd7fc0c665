"""Spawnpoint's event contracts: wire models and names only (no ORM, web or broker imports), so a
frontend team can import them as they are."""

from .envelope import Event, WireModel, utc_now
from .events.orders import (
    OrderCreated,
    OrderCreatedPayload,
    OrderExpired,
    OrderExpiredPayload,
    OrderPaid,
    OrderPaidPayload,
    OrderRefunded,
    OrderRefundedPayload,
)
from .events.payments import PaymentFailed, PaymentFailedPayload, PaymentProcessing, PaymentProcessingPayload
from .events.provisioning import (
    FailureReason,
    ProvisionFailed,
    ProvisionFailedPayload,
    ProvisioningReplayed,
    ProvisioningReplayedPayload,
    ProvisioningRetryScheduled,
    ProvisioningRetryScheduledPayload,
    ServerCreated,
    ServerCreatedPayload,
    ServerInstalled,
    ServerInstalledPayload,
)
from .models import REDACTED, Deploy, FeatureLimits, Limits, OrderSnapshot, ServerSpec, redact_order
from .registry import ALL_EVENTS, BY_ROUTING_KEY, BY_TYPE, AnyEvent, parse_event

__all__ = [
    "ALL_EVENTS",
    "BY_ROUTING_KEY",
    "BY_TYPE",
    "REDACTED",
    "AnyEvent",
    "Deploy",
    "Event",
    "FailureReason",
    "FeatureLimits",
    "Limits",
    "OrderCreated",
    "OrderCreatedPayload",
    "OrderExpired",
    "OrderExpiredPayload",
    "OrderPaid",
    "OrderPaidPayload",
    "OrderRefunded",
    "OrderRefundedPayload",
    "OrderSnapshot",
    "PaymentFailed",
    "PaymentFailedPayload",
    "PaymentProcessing",
    "PaymentProcessingPayload",
    "ProvisionFailed",
    "ProvisionFailedPayload",
    "ProvisioningReplayed",
    "ProvisioningReplayedPayload",
    "ProvisioningRetryScheduled",
    "ProvisioningRetryScheduledPayload",
    "ServerCreated",
    "ServerCreatedPayload",
    "ServerInstalled",
    "ServerInstalledPayload",
    "ServerSpec",
    "WireModel",
    "parse_event",
    "redact_order",
    "utc_now",
]
