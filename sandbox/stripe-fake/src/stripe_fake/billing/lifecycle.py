"""Subscription status changes and the events they emit.

Every change goes through here so that ``customer.subscription.updated`` always carries
``previous_attributes`` computed from a before/after snapshot, and so that ending a subscription always
stops automatic collection of its open invoices (Stripe's documented behaviour on cancel).
"""

from __future__ import annotations

from collections.abc import Callable

from stripe_fake.billing.objects import Subscription
from stripe_fake.billing.state import BillingState, diff
from stripe_fake.events import AUTOMATIC, RequestInfo


def emit_updated(
    state: BillingState,
    sub: Subscription,
    before: dict[str, object],
    *,
    at: int,
    request: RequestInfo = AUTOMATIC,
) -> None:
    """``customer.subscription.updated`` with the difference from ``before`` (nothing if unchanged)."""
    after = sub.to_dict()
    previous = diff(before, after)
    if previous:
        state.emit("customer.subscription.updated", after, at=at, request=request, previous=previous)


def mutate(
    state: BillingState,
    sub: Subscription,
    change: Callable[[Subscription], None],
    *,
    at: int,
    request: RequestInfo = AUTOMATIC,
) -> None:
    """Apply ``change`` and emit the resulting ``customer.subscription.updated``."""
    before = sub.to_dict()
    change(sub)
    emit_updated(state, sub, before, at=at, request=request)


def set_status(
    state: BillingState, sub: Subscription, status: str, *, at: int, request: RequestInfo = AUTOMATIC
) -> None:
    """Move to ``status`` (``previous_attributes: {status: <old>}``)."""
    if sub.status == status:
        return

    def change(s: Subscription) -> None:
        s.status = status

    mutate(state, sub, change, at=at, request=request)


def end(
    state: BillingState,
    sub: Subscription,
    *,
    at: int,
    reason: str,
    request: RequestInfo = AUTOMATIC,
) -> None:
    """Cancel for good: ``customer.subscription.deleted``, and no more automatic collection."""
    sub.status = "canceled"
    sub.ended_at = at
    if sub.canceled_at is None:
        sub.canceled_at = at
    sub.cancellation_reason = reason
    for invoice in state.store.invoices_of_subscription(sub.id):
        if invoice.status == "open":
            invoice.next_payment_attempt = None
            invoice.auto_advance = False
    state.emit("customer.subscription.deleted", sub.to_dict(), at=at, request=request)
