"""An order's history in two voices: the customer's words, and the operator's full detail.

The customer's timeline says what happened and when, in words a customer understands: no event names,
ids, panel errors or reason codes. Consecutive retries are one entry (the customer needs to know we are
trying again, not how often). The operator's summary of each event keeps every internal detail: panel
ids, failure reasons and messages, session and refund ids.

Both follow the canonical order (``ordering.py``), so the history reads the same whatever order the
events arrived in, and never shows an effect before its cause even when the services' clocks disagree.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from spawnpoint_contracts import (
    Event,
    FailureReason,
    OrderCreated,
    OrderExpired,
    OrderPaid,
    OrderRefunded,
    PaymentFailed,
    PaymentProcessing,
    ProvisionFailed,
    ProvisioningReplayed,
    ProvisioningRetryScheduled,
    ServerCreated,
    ServerInstalled,
)

from .ordering import place

ZERO_DECIMAL_CURRENCIES = frozenset(
    {"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf"}
)
"""Currencies whose minor unit is the unit itself (Stripe's list)."""

_FAILURE_WORDS: dict[FailureReason, str] = {
    FailureReason.NO_CAPACITY: "There was no room for your server. Our team has been notified",
    FailureReason.INSTALL_FAILED: "The installation of your server failed. Our team has been notified",
    FailureReason.INSTALL_TIMEOUT: "The installation of your server took too long. Our team has been notified",
}
_FAILURE_DEFAULT = "We could not create your server. Our team has been notified"


@dataclass(frozen=True)
class TimelineEntry:
    """One line of the customer's timeline."""

    at: datetime
    code: str
    title: str
    detail: str | None = None


def money(amount: int, currency: str) -> str:
    """``500, "eur"`` -> ``"5.00 EUR"`` (amounts travel in the currency's minor unit)."""
    code = currency.lower()
    if code in ZERO_DECIMAL_CURRENCIES:
        return f"{amount} {code.upper()}"
    return f"{amount / 100:.2f} {code.upper()}"


def customer_timeline(events: Iterable[Event]) -> list[TimelineEntry]:
    """What happened to the order, oldest first, in the customer's words."""
    entries: list[TimelineEntry] = []
    retries = 0
    for placed in place(events):
        entry = _customer_entry(placed.event, placed.at)
        if entry is None:
            continue
        if entry.code == "retrying" and entries and entries[-1].code == "retrying":
            retries += 1
            entries[-1] = TimelineEntry(
                entries[-1].at, "retrying", entries[-1].title, f"The host was busy; we tried again ({retries} times)"
            )
            continue
        retries = 1 if entry.code == "retrying" else 0
        entries.append(entry)
    return entries


def _customer_entry(event: Event, at: datetime) -> TimelineEntry | None:
    if isinstance(event, OrderCreated):
        order = event.payload.order
        return TimelineEntry(
            at, "order_placed", "Order placed", f"{order.game_name}, {order.plan_name}: {order.server_name}"
        )
    if isinstance(event, PaymentProcessing):
        return TimelineEntry(at, "payment_pending", "Payment started", "Waiting for your bank to confirm the payment")
    if isinstance(event, OrderPaid):
        return TimelineEntry(
            at, "payment_received", "Payment received", money(event.payload.amount, event.payload.currency)
        )
    if isinstance(event, PaymentFailed):
        return TimelineEntry(at, "payment_failed", "Payment failed", "The payment did not go through")
    if isinstance(event, OrderExpired):
        return TimelineEntry(at, "payment_expired", "Payment window expired", "The order was not paid in time")
    if isinstance(event, OrderRefunded):
        return _refund_entry(event, at)
    if isinstance(event, ServerCreated):
        return TimelineEntry(at, "server_created", "Server created", "Your server is being installed")
    if isinstance(event, ServerInstalled):
        return TimelineEntry(at, "server_ready", "Server ready", "You can now connect to your server")
    if isinstance(event, ProvisionFailed):
        return TimelineEntry(
            at, "server_error", "Server error", _FAILURE_WORDS.get(event.payload.reason, _FAILURE_DEFAULT)
        )
    if isinstance(event, ProvisioningRetryScheduled):
        return TimelineEntry(at, "retrying", "Trying again", "The host was busy; we are trying again")
    if isinstance(event, ProvisioningReplayed):
        return TimelineEntry(
            at,
            "retried_by_support",
            "Our team is trying again",
            "We fixed the problem and are creating your server again",
        )
    return None


def _refund_entry(event: OrderRefunded, at: datetime) -> TimelineEntry:
    amount = money(event.payload.amount, event.payload.currency)
    reason = event.payload.reason
    if reason.startswith("duplicate"):
        return TimelineEntry(at, "refunded", "Duplicate payment refunded", f"{amount} paid twice was returned to you")
    if reason == "provisioning_failed":
        return TimelineEntry(at, "refunded", "Payment refunded", f"{amount}, because we could not create your server")
    if reason == "paid_after_expiry":
        return TimelineEntry(
            at, "refunded", "Payment refunded", f"{amount}, because it arrived after the order expired"
        )
    return TimelineEntry(at, "refunded", "Payment refunded", amount)


def operator_summary(event: Event) -> str:
    """One line with every internal detail of the event, for the operator's trail."""
    if isinstance(event, OrderCreated):
        o = event.payload.order
        return (
            f"order {o.game_id}/{o.plan_id} {o.server_name!r} for user {o.user_id} <{o.email}>, "
            f"{money(o.amount, o.currency)}, egg {o.server_spec.egg_id}"
        )
    if isinstance(event, PaymentProcessing):
        return f"delayed payment started, session {event.payload.session_id}"
    if isinstance(event, OrderPaid):
        paid = event.payload
        return (
            f"paid {money(paid.amount, paid.currency)} via {paid.fulfilled_via}, session {paid.session_id}, "
            f"payment_intent {paid.payment_intent or '-'}"
        )
    if isinstance(event, PaymentFailed):
        return f"payment failed: {event.payload.reason}, session {event.payload.session_id or '-'}"
    if isinstance(event, OrderExpired):
        return f"expired: {event.payload.reason}, session {event.payload.session_id or '-'}"
    if isinstance(event, OrderRefunded):
        refund = event.payload
        return f"refunded {money(refund.amount, refund.currency)}: {refund.reason}, refund {refund.refund_id}"
    if isinstance(event, ServerCreated):
        server = event.payload
        verb = "adopted existing" if server.adopted else "created"
        return (
            f"{verb} server {server.server_id} ({server.identifier}, uuid {server.server_uuid}) "
            f"on node {server.node_id or '-'} for panel user {server.panel_user_id}"
        )
    if isinstance(event, ServerInstalled):
        return f"installed server {event.payload.server_id} ({event.payload.identifier or '-'})"
    if isinstance(event, ProvisionFailed):
        failed = event.payload
        on_server = f", server {failed.server_id}" if failed.server_id is not None else ""
        detail = "".join(f", {k}={v}" for k, v in sorted(failed.detail.items()))
        replay = "replayable" if failed.replayable else "not replayable"
        return (
            f"failed: {failed.reason.value}: {failed.message} "
            f"(after {failed.attempts} attempts, {replay}{on_server}{detail})"
        )
    if isinstance(event, ProvisioningRetryScheduled):
        retry = event.payload
        return f"retry {retry.attempt} scheduled in {retry.delay_seconds:g}s: {retry.reason.value}: {retry.message}"
    if isinstance(event, ProvisioningReplayed):
        return f"replay {event.payload.replay_count} by an operator from {event.payload.source_queue}"
    return event.event_type
