"""Dunning: the retry schedule of a failed invoice and what happens when the retries run out.

Attempt counting follows Stripe's docstring: "Any payment attempt counts as the first attempt, and
subsequently only automatic retries increment the attempt count". So a manual ``invoices.pay`` on an
invoice that was never attempted makes ``attempt_count`` 1, later manual attempts leave it (and
``next_payment_attempt``) alone. The schedule is fixed: retry *n* happens ``retry_days[n]`` days after
the first failed automatic attempt; the last ``invoice.payment_failed`` has ``next_payment_attempt``
null, and then the configured terminal action runs.
"""

from __future__ import annotations

from stripe_fake.billing import lifecycle
from stripe_fake.billing.objects import Invoice
from stripe_fake.billing.periods import DAY
from stripe_fake.billing.settings import BillingSettings
from stripe_fake.billing.state import BillingState


def count_success(invoice: Invoice, *, automatic: bool) -> None:
    """A successful attempt counts like any other (the first one, or an automatic retry)."""
    invoice.attempt_count = invoice.attempt_count + 1 if automatic else max(invoice.attempt_count, 1)


def record_failure(settings: BillingSettings, invoice: Invoice, at: int, *, automatic: bool) -> bool:
    """Count a failed attempt and schedule the next one; True when no retry is left."""
    if not automatic:
        invoice.attempt_count = max(invoice.attempt_count, 1)
        return False
    invoice.attempt_count += 1
    if invoice.first_failure_at is None:
        invoice.first_failure_at = at
        invoice.retries_done = 0
    else:
        invoice.retries_done += 1
    days = settings.retry_days
    if invoice.retries_done < len(days):
        invoice.next_payment_attempt = invoice.first_failure_at + int(days[invoice.retries_done] * DAY)
        return False
    invoice.next_payment_attempt = None
    return True


def apply_subscription_action(state: BillingState, invoice: Invoice, at: int) -> None:
    """The Dashboard's "subscription status" choice once retries are exhausted."""
    sub = state.store.subscriptions.get(invoice.subscription or "")
    if sub is None or not sub.live:
        return
    action = state.settings.subscription_action
    if action == "cancel":
        lifecycle.end(state, sub, at=at, reason="payment_failed")
    elif action == "unpaid":
        lifecycle.set_status(state, sub, "unpaid", at=at)
