"""The renewal processor: what happens to subscriptions and invoices as a clock passes due times.

It works for any clock: a test clock (advanced through the API) or the fake's own clock (moved by
``POST /_fake/clock/advance``, and by real time through the periodic sweep). Due times are collected
from the clock's subscriptions and invoices, and processed strictly in time order, one at a time, so
that what one step creates (a draft invoice due for finalization an hour later, a retry days later) is
picked up by the next. At equal times, scheduled cancellations go before renewals, which go before
finalizations, which go before retries.

- ``trial_will_end``: three days before a trial ends.
- ``cancel``: ``cancel_at`` reached (at or before the period end): ``customer.subscription.deleted``,
  no invoice (scenario E).
- ``renew``: the period end. The items move to the next period and a ``subscription_cycle`` draft
  invoice is created (``customer.subscription.updated`` with ``items``/``latest_invoice`` in
  ``previous_attributes``, then ``invoice.created``; a trial ending adds ``status``). Scenario B.
- ``finalize``: an hour after ``invoice.created``: ``invoice.finalized`` and the first automatic charge
  (scenarios B, C).
- ``retry``: ``next_payment_attempt`` reached: another automatic charge (scenarios C, D).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from stripe_fake.billing import lifecycle
from stripe_fake.billing.invoicing import Invoicing
from stripe_fake.billing.objects import Subscription
from stripe_fake.billing.periods import add_intervals
from stripe_fake.billing.state import BillingState
from stripe_fake.billing.subscriptions import TRIAL_WILL_END_LEAD, SubscriptionService

MAX_STEPS = 100_000
"""A safety net: a two-year advance of a daily subscription with retries is a few thousand steps."""

RANKS = {"trial_will_end": 0, "cancel": 1, "renew": 2, "finalize": 3, "retry": 4}


@dataclass(frozen=True, slots=True, order=True)
class Due:
    """One thing that happens at ``at``."""

    at: int
    rank: int
    target: str
    kind: str


class RenewalProcessor:
    """Processes every due time of one clock up to a moment."""

    def __init__(self, state: BillingState, invoicing: Invoicing, subscriptions: SubscriptionService) -> None:
        self._state = state
        self._invoicing = invoicing
        self._subscriptions = subscriptions

    def run(self, clock_id: str | None, until: int, *, on_step: Callable[[int], None] | None = None) -> int:
        """Process everything due on ``clock_id`` up to ``until``; returns the number of steps."""
        steps = 0
        while steps < MAX_STEPS:
            due = self.next_due(clock_id, until)
            if due is None:
                break
            if on_step is not None:
                on_step(due.at)
            self._process(due)
            steps += 1
        return steps

    def next_due(self, clock_id: str | None, until: int) -> Due | None:
        """The earliest due time on ``clock_id`` that is not after ``until``."""
        candidates: list[Due] = []
        store = self._state.store
        for sub in store.on_clock(clock_id):
            if not sub.live:
                continue
            if sub.status == "trialing" and sub.trial_end is not None and not sub.trial_will_end_sent:
                candidates.append(
                    Due(sub.trial_end - TRIAL_WILL_END_LEAD, RANKS["trial_will_end"], sub.id, "trial_will_end")
                )
            if sub.cancel_at is not None and sub.cancel_at <= sub.current_period_end:
                candidates.append(Due(sub.cancel_at, RANKS["cancel"], sub.id, "cancel"))
            else:
                candidates.append(Due(sub.current_period_end, RANKS["renew"], sub.id, "renew"))
        for invoice in store.invoices_on_clock(clock_id):
            if not invoice.auto_advance:
                continue
            if invoice.status == "draft" and invoice.finalize_at is not None:
                candidates.append(Due(invoice.finalize_at, RANKS["finalize"], invoice.id, "finalize"))
            elif invoice.status == "open" and invoice.next_payment_attempt is not None:
                candidates.append(Due(invoice.next_payment_attempt, RANKS["retry"], invoice.id, "retry"))
        due = [c for c in candidates if c.at <= until]
        return min(due) if due else None

    def _process(self, due: Due) -> None:
        store = self._state.store
        if due.kind in ("trial_will_end", "cancel", "renew"):
            sub = store.subscriptions[due.target]
            if due.kind == "trial_will_end":
                self._subscriptions.trial_will_end(sub, at=due.at)
            elif due.kind == "cancel":
                lifecycle.end(self._state, sub, at=due.at, reason="cancellation_requested")
            else:
                self._renew(sub, due.at)
            return
        invoice = store.invoices[due.target]
        if due.kind == "finalize":
            self._invoicing.finalize_and_collect(invoice, at=due.at)
        else:
            self._invoicing.attempt(invoice, at=due.at, automatic=True)

    def _renew(self, sub: Subscription, at: int) -> None:
        """Scenario B's first half: next period, ``subscription_cycle`` draft invoice."""
        before = sub.to_dict()
        previous_start = sub.current_period_start
        sub.anchor_steps += 1
        new_end = add_intervals(sub.billing_cycle_anchor, sub.interval, sub.interval_count * sub.anchor_steps)
        for item in sub.items:
            item.current_period_start = at
            item.current_period_end = new_end
        if sub.status == "trialing":
            sub.status = "active"
        customer = self._state.customer(sub.customer)
        invoice = self._invoicing.draft(
            customer,
            sub,
            "subscription_cycle",
            at=at,
            period_start=previous_start,
            period_end=at,
            currency=sub.currency,
        )
        self._invoicing.add_period_lines(invoice, sub, at, new_end, trial=False)
        self._invoicing.attach_pending_items(invoice)
        if sub.status == "unpaid":
            invoice.auto_advance = False
            invoice.finalize_at = None
        lifecycle.emit_updated(self._state, sub, before, at=at)
        self._invoicing.emit("invoice.created", invoice, at=at)
