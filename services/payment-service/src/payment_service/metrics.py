"""payment-service's Prometheus metrics (served on ``/metrics`` with the kit's HTTP metrics).

Labels are small closed sets (event types we handle or ``other``, fixed outcome names), so a flood of
unknown event types cannot blow up the number of series.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from .domain.stripe_events import HANDLED_TYPES

WEBHOOKS = Counter(
    "payment_webhooks_total",
    "Stripe webhook deliveries received, by event type and outcome "
    "(stored, duplicate, ignored, invalid_signature, malformed)",
    ["type", "outcome"],
)
SIGNATURE_FAILURES = Counter(
    "payment_webhook_signature_failures_total",
    "Webhook deliveries refused for their signature, by reason",
    ["reason"],
)
EVENTS_APPLIED = Counter(
    "payment_stripe_events_applied_total",
    "Stored Stripe events applied by the webhook worker, by event type and outcome (the handler's, or "
    "duplicate_event, retry, error)",
    ["type", "outcome"],
)
FULFILMENTS = Counter(
    "payment_fulfilments_total",
    "Fulfilment attempts by path (webhook, return_page, sweeper) and outcome",
    ["path", "outcome"],
)
REFUNDS = Counter(
    "payment_refunds_total",
    "Refunds by reason and outcome (scheduled, succeeded, cancelled, not_refunded, failed, retry)",
    ["reason", "outcome"],
)
SWEEPS = Counter("payment_sweeps_total", "Reconciliation sweeps run, by outcome", ["outcome"])
SWEPT_SESSIONS = Counter(
    "payment_swept_sessions_total", "Checkout sessions the sweeper asked Stripe about, by result", ["result"]
)
WEBHOOK_SECONDS = Histogram(
    "payment_webhook_seconds",
    "Time to verify and store one webhook delivery",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)


def type_label(event_type: object) -> str:
    """An event type as a label value: one of ours, or ``other``."""
    return event_type if isinstance(event_type, str) and event_type in HANDLED_TYPES else "other"


RENTAL_CHANGES = Counter(
    "payment_rental_changes_total",
    "Rental changes by cause (activated, renewed, payment_failed, recovered, lapsed, ended, ...) and by what "
    "noticed them (webhook, reconciler, deadline, customer)",
    ["cause", "via"],
)
RENTAL_DEADLINES = Counter(
    "payment_rental_deadlines_total", "Rental deadlines worked, by deadline and outcome", ["deadline", "outcome"]
)
RENTAL_RECONCILED = Counter(
    "payment_rental_reconciliations_total",
    "Rentals read again from Stripe by the reconciler, by result (changed means a webhook had been lost)",
    ["result"],
)
RENTALS = Gauge(
    "payment_rentals",
    "Rentals by phase (awaiting_payment, active, past_due, cancelling, lapsed, ended) and kind (subscription, "
    "fixed_term), from the database every 30 s; every process reports the same figure (aggregate with max)",
    ["phase", "kind"],
)
MRR = Gauge(
    "payment_mrr_minor_units",
    "Monthly recurring revenue in minor units (cents) by currency: the price of every subscription rental that "
    "is active, past_due or cancelling, normalised to a month from its billing interval (from the database "
    "every 30 s; aggregate with max)",
    ["currency"],
)
