"""Stored Stripe events: which types we keep, which handler applies one, and how a failing one is retried.

The webhook stores a verified event of a type we handle (``HANDLED_TYPES``) and answers; the webhook worker
applies it later through the handler table (``service_layer.handlers.stripe_handlers``). The handler is
picked by ``handled_as``: by the event's type, except that a session Stripe *now* reports paid is fulfilled
whatever the event said (a late or reordered ``expired`` or ``async_payment_failed`` never undoes a
payment).

A stored event is ``pending`` until its effects commit (``processed``, in the same transaction), or until
it has failed for longer than Stripe itself retries (``abandoned``, for a person to look at). A failure
keeps it pending with a growing delay (``retry_delay``).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from spawnpoint_kit.state_machine import StateMachine

from .fulfilment import SessionFacts

COMPLETED = "checkout.session.completed"
ASYNC_SUCCEEDED = "checkout.session.async_payment_succeeded"
ASYNC_FAILED = "checkout.session.async_payment_failed"
EXPIRED = "checkout.session.expired"
SESSION_TYPES = frozenset({COMPLETED, ASYNC_SUCCEEDED, ASYNC_FAILED, EXPIRED})
"""Events about a Checkout Session: the session is retrieved and the session handlers apply it."""

SUBSCRIPTION_TYPES = frozenset(
    {
        "invoice.paid",
        "invoice.payment_failed",
        "invoice.payment_action_required",
        "customer.subscription.created",
        "customer.subscription.updated",
        "customer.subscription.deleted",
    }
)
"""Events about a subscription or one of its invoices: whatever they say, the subscription is retrieved and
the rental brought to its state (``service_layer.rentals``), so their order and number do not matter."""

MONEY_BACK_TYPES = frozenset({"charge.refunded", "charge.dispute.created", "charge.dispute.closed"})
"""Money taken back outside dunning (a Dashboard refund, a dispute): the charge's order is found, the object
is read again from Stripe, and the refund and dispute policy applies (``service_layer.money_back``)."""

HANDLED_TYPES = SESSION_TYPES | SUBSCRIPTION_TYPES | MONEY_BACK_TYPES
"""The event types the webhook keeps; any other type is acknowledged and dropped."""

GIVE_UP_AFTER = timedelta(days=3)
"""Stripe itself retries for up to three days; an event we still cannot apply then needs a person."""


class RetryLater(Exception):
    """The event cannot be applied yet (its order is not known here, Stripe does not know its session):
    keep it pending and try again later."""


class StoredEventStatus(StrEnum):
    PENDING = "pending"
    PROCESSED = "processed"
    ABANDONED = "abandoned"


class StoredEventTrigger(StrEnum):
    APPLIED = "applied"
    GIVEN_UP = "given_up"


STORED_EVENT: StateMachine[StoredEventStatus, StoredEventTrigger] = StateMachine(
    "stripe_event",
    {
        (StoredEventStatus.PENDING, StoredEventTrigger.APPLIED): StoredEventStatus.PROCESSED,
        (StoredEventStatus.PENDING, StoredEventTrigger.GIVEN_UP): StoredEventStatus.ABANDONED,
    },
)
"""A stored event leaves ``pending`` once, either way."""


def handled_as(event_type: str, session: SessionFacts) -> str:
    """The event type whose handler applies ``session`` (as Stripe reports it now): a paid session is
    fulfilled whatever the event type, anything else follows the event."""
    if session.status == "complete" and session.payment_status == "paid":
        return COMPLETED
    return event_type


def retry_delay(attempts: int) -> timedelta:
    """How long a failed event waits before its next attempt: 0.5 s doubling up to 5 minutes."""
    return timedelta(seconds=min(300.0, 0.5 * 2 ** min(attempts - 1, 12)))


def gives_up(received_at: datetime, now: datetime) -> bool:
    """The event has been failing for longer than Stripe's own retry window."""
    return now - received_at > GIVE_UP_AFTER


def subscription_ref(event_type: str, obj: dict[str, Any]) -> tuple[str | None, uuid.UUID | None]:
    """The subscription an invoice or subscription event is about, and the order it was sold for (the
    order id travels in ``subscription_data.metadata``; an invoice carries its snapshot in
    ``parent.subscription_details``)."""
    if event_type.startswith("customer.subscription."):
        return obj.get("id"), _as_uuid((obj.get("metadata") or {}).get("serverOrderId"))
    parent = obj.get("parent") or {}
    details = parent.get("subscription_details") if isinstance(parent, dict) else None
    if not isinstance(details, dict):
        return None, None
    subscription = details.get("subscription")
    if isinstance(subscription, dict):
        subscription = subscription.get("id")
    metadata = details.get("metadata") or {}
    order = metadata.get("serverOrderId") if isinstance(metadata, dict) else None
    return (subscription if isinstance(subscription, str) else None), _as_uuid(order)


def _as_uuid(ref: object) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(ref)) if ref else None
    except ValueError:
        return None


def order_ref(obj: dict[str, Any]) -> uuid.UUID | None:
    """The order id a session object carries (metadata first, then client_reference_id)."""
    metadata = obj.get("metadata") or {}
    ref = metadata.get("serverOrderId") if isinstance(metadata, dict) else None
    ref = ref or obj.get("client_reference_id")
    try:
        return uuid.UUID(str(ref)) if ref else None
    except ValueError:
        return None
