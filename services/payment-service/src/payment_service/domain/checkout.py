"""Rules for an order's Checkout Sessions: what we send Stripe, and whether a session can be reused.

One open session per order. A repeated request (double click, reload) gets the open session's
``client_secret`` again, after Stripe confirmed that it is still open; a session that expired is
replaced; one that is about to expire is expired first (the customer must not pay into a session we
are abandoning) and replaced; one that Stripe reports ``complete`` means the customer paid, so no new
session is made and the payment is fulfilled instead.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from spawnpoint_contracts import OrderSnapshot

REUSE_MARGIN = timedelta(minutes=2)
"""An open session that expires sooner than this is replaced rather than handed out again."""

STRIPE_MIN_EXPIRY = timedelta(minutes=30)
"""Stripe accepts ``expires_at`` from 30 minutes to 24 hours after creation (checked on its clock)."""


class SessionRowStatus(StrEnum):
    """Our record of a session attempt. ``creating``: parameters stored, Stripe's answer not yet
    recorded; ``abandoned``: Stripe refused the stored request, which will never be sent again."""

    CREATING = "creating"
    OPEN = "open"
    COMPLETE = "complete"
    EXPIRED = "expired"
    ABANDONED = "abandoned"


STRIPE_SESSION_STATES = frozenset({SessionRowStatus.OPEN, SessionRowStatus.COMPLETE, SessionRowStatus.EXPIRED})
"""The session states Stripe reports; our row mirrors them (``creating`` and ``abandoned`` are ours only)."""


def mirrored_status(current: str, stripe_status: str | None) -> str | None:
    """The status our row takes after Stripe reported ``stripe_status``, or None when it stays as it is."""
    if stripe_status in STRIPE_SESSION_STATES and stripe_status != current:
        return stripe_status
    return None


def attempt_is_live(status: str, expires_at: datetime, now: datetime) -> bool:
    """An attempt that may still take the customer's money: open at Stripe as far as we know, or being
    created and still within its payment window (a retry may still hand it to the customer)."""
    if status == SessionRowStatus.OPEN:
        return True
    return status == SessionRowStatus.CREATING and expires_at > now


class NextStep(StrEnum):
    CREATE = "create"
    RESEND = "resend"
    VERIFY = "verify"


class RemoteVerdict(StrEnum):
    REUSE = "reuse"
    EXPIRE_THEN_REPLACE = "expire_then_replace"
    REPLACE = "replace"
    PAID = "paid"


def next_step(latest_status: str | None, latest_expires_at: datetime | None, now: datetime) -> NextStep:
    """What to do for a checkout request, from our latest attempt for the order."""
    if latest_status == SessionRowStatus.CREATING:
        if latest_expires_at is not None and latest_expires_at - now < STRIPE_MIN_EXPIRY:
            return NextStep.CREATE  # Stripe would refuse it unless it already ran: start a new attempt
        return NextStep.RESEND
    if latest_status in (SessionRowStatus.OPEN, SessionRowStatus.COMPLETE):
        return NextStep.VERIFY
    return NextStep.CREATE


def verdict(stripe_status: str | None, expires_at: datetime, now: datetime) -> RemoteVerdict:
    """What Stripe's view of our latest session means for a new checkout request."""
    if stripe_status == "complete":
        return RemoteVerdict.PAID
    if stripe_status == "open":
        return RemoteVerdict.REUSE if expires_at - REUSE_MARGIN > now else RemoteVerdict.EXPIRE_THEN_REPLACE
    return RemoteVerdict.REPLACE


def idempotency_key(order_id: str, attempt: int) -> str:
    """Stable per attempt: a retry of the same attempt is the same request to Stripe."""
    return f"checkout-session:{order_id}:{attempt}"


def is_subscription(snapshot: OrderSnapshot) -> bool:
    """The order is a rental renewed by a Stripe subscription (not a fixed term paid once)."""
    return snapshot.billing is not None and snapshot.billing.kind == "subscription"


def customer_idempotency_key(user_id: str) -> str:
    """One Stripe customer per shop user, however many checkouts race to create it."""
    return f"customer:{user_id}"


def session_params(
    snapshot: OrderSnapshot, return_url: str, expires_at: datetime, *, customer: str | None = None
) -> dict[str, Any]:
    """The exact Stripe parameters for the order's session (all of them are stored before the call).

    Amount and currency come from the order (priced by order-service from its catalog), never from the
    browser. ``payment_method_types`` is not sent: the API versions the SDK pins (dahlia, endive)
    refuse it, and the payment methods are chosen in the Stripe dashboard. A subscription's session names
    the user's Stripe customer (created once, ``customer``) and carries the order id in
    ``subscription_data.metadata`` too, so every invoice and subscription event names the order."""
    if is_subscription(snapshot):
        return _subscription_params(snapshot, return_url, expires_at, customer)
    order_id = str(snapshot.order_id)
    return {
        "mode": "payment",
        "ui_mode": "embedded_page",
        "line_items": [
            {
                "price_data": {
                    "currency": snapshot.currency,
                    "unit_amount": snapshot.amount,
                    "product_data": {
                        "name": f"{snapshot.game_name} – {snapshot.plan_name}",
                        "metadata": {"game_id": snapshot.game_id, "plan_id": snapshot.plan_id},
                    },
                },
                "quantity": 1,
            }
        ],
        "metadata": {"serverOrderId": order_id},
        "client_reference_id": order_id,
        "payment_intent_data": {"metadata": {"serverOrderId": order_id}},
        "return_url": return_url,
        "expires_at": int(expires_at.timestamp()),
        "customer_email": snapshot.email,
    }


def _subscription_params(
    snapshot: OrderSnapshot, return_url: str, expires_at: datetime, customer: str | None
) -> dict[str, Any]:
    billing = snapshot.billing
    if billing is None or billing.interval is None:  # is_subscription, and Billing validates it
        raise ValueError(f"order {snapshot.order_id} is not a subscription")
    order_id = str(snapshot.order_id)
    params: dict[str, Any] = {
        "mode": "subscription",
        "ui_mode": "embedded_page",
        "line_items": [
            {
                "price_data": {
                    "currency": snapshot.currency,
                    "unit_amount": snapshot.amount,
                    "recurring": {"interval": billing.interval, "interval_count": billing.interval_count},
                    "product_data": {
                        "name": f"{snapshot.game_name} – {snapshot.plan_name}",
                        "metadata": {"game_id": snapshot.game_id, "plan_id": snapshot.plan_id},
                    },
                },
                "quantity": 1,
            }
        ],
        "metadata": {"serverOrderId": order_id},
        "client_reference_id": order_id,
        "subscription_data": {"metadata": {"serverOrderId": order_id, "plan_id": snapshot.plan_id}},
        "return_url": return_url,
        "expires_at": int(expires_at.timestamp()),
    }
    if customer:
        params["customer"] = customer
    else:
        params["customer_email"] = snapshot.email
    return params
