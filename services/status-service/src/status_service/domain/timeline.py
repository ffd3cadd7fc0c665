"""An order's history in two voices: the customer's words, and the operator's full detail.

The customer's timeline says what happened and when, in words a customer understands: no event names,
ids, panel errors or reason codes. Consecutive retries are one entry (the customer needs to know we are
trying again, not how often). The operator's summary of each event keeps every internal detail: panel
ids, failure reasons and messages, session and refund ids.

A rental adds one entry per ``RentalChanged`` (one per rental version: its ``cause`` in the customer's
words, ``rental_<cause>``) and one per panel outcome (``server_suspended``, ``server_unsuspended``,
``server_resized``, ``server_terminated``, ``server_action_failed``, the last without the panel's words).
``DesiredServerStateChanged`` is a decision, not something that happened to the server: it is only in the
operator's trail. Each e-mail the notification service got accepted for the customer (``NotificationSent``)
is an ``email_sent`` entry; the operator's trail names its kind and Message-ID.

Both follow the canonical order (``ordering.py``), so the history reads the same whatever order the
events arrived in, and never shows an effect before its cause even when the services' clocks disagree.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from spawnpoint_contracts import (
    DesiredServerStateChanged,
    Event,
    FailureReason,
    NotificationSent,
    OrderCreated,
    OrderExpired,
    OrderPaid,
    OrderRefunded,
    PaymentFailed,
    PaymentProcessing,
    ProvisionFailed,
    ProvisioningReplayed,
    ProvisioningRetryScheduled,
    RentalCause,
    RentalChanged,
    ServerAction,
    ServerActionFailed,
    ServerCreated,
    ServerInstalled,
    ServerResized,
    ServerSuspended,
    ServerTerminated,
    ServerUnsuspended,
)

from .ordering import place
from .rental import day, rank

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
    placed_events = place(events)
    shown = _one_per_rental_version([p.event for p in placed_events])
    for placed in placed_events:
        if isinstance(placed.event, RentalChanged) and placed.event.event_id not in shown:
            continue
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


def _one_per_rental_version(events: list[Event]) -> set[object]:
    """The ids of the RentalChanged events to show: one per version (the one the status would show, should
    a producer ever send two with one version)."""
    best: dict[int, RentalChanged] = {}
    for event in events:
        if isinstance(event, RentalChanged):
            kept = best.get(event.payload.version)
            if kept is None or rank(event) > rank(kept):
                best[event.payload.version] = event
    return {e.event_id for e in best.values()}


def _customer_entry(event: Event, at: datetime) -> TimelineEntry | None:
    if isinstance(event, RentalChanged):
        return _rental_entry(event, at)
    if isinstance(event, ServerSuspended):
        return TimelineEntry(
            at, "server_suspended", "Server suspended", "Your server cannot be started for now; your files are kept"
        )
    if isinstance(event, ServerUnsuspended):
        return TimelineEntry(at, "server_unsuspended", "Server restored", "You can use your server again")
    if isinstance(event, ServerResized):
        limits = event.payload.limits
        return TimelineEntry(
            at, "server_resized", "Server resized", f"Now {limits.memory} MB of memory and {limits.disk} MB of disk"
        )
    if isinstance(event, ServerTerminated):
        return TimelineEntry(at, "server_terminated", "Server deleted", "Your server and its files were deleted")
    if isinstance(event, ServerActionFailed):
        return TimelineEntry(
            at, "server_action_failed", "Server change delayed", _ACTION_FAILED_WORDS[event.payload.action]
        )
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
    if isinstance(event, NotificationSent):
        if event.payload.recipient != "customer":
            return None  # what the operator was told is in the operator's trail only
        return TimelineEntry(at, "email_sent", "E-mail sent", "We sent you an e-mail about this")
    if isinstance(event, ProvisioningReplayed):
        return TimelineEntry(
            at,
            "retried_by_support",
            "Our team is trying again",
            "We fixed the problem and are creating your server again",
        )
    return None


_ACTION_FAILED_WORDS: dict[ServerAction, str] = {
    ServerAction.SUSPEND: "We could not suspend your server yet. Our team has been notified",
    ServerAction.UNSUSPEND: "We could not restore your server yet. Our team has been notified",
    ServerAction.RESIZE: "We could not move your server to its new plan yet. Our team has been notified",
    ServerAction.TERMINATE: "We could not delete your server yet. Our team has been notified",
}

_RENTAL_TITLES: dict[RentalCause, str] = {
    RentalCause.ACTIVATED: "Rental started",
    RentalCause.RENEWED: "Rental renewed",
    RentalCause.PAYMENT_FAILED: "Renewal payment failed",
    RentalCause.PAYMENT_ACTION_REQUIRED: "Payment needs your confirmation",
    RentalCause.RECOVERED: "Payment received",
    RentalCause.CANCELLATION_SCHEDULED: "Rental cancelled",
    RentalCause.CANCELLATION_UNDONE: "Cancellation undone",
    RentalCause.LAPSED: "Rental lapsed",
    RentalCause.REFUNDED: "Payment refunded",
    RentalCause.DISPUTE_OPENED: "Payment disputed",
    RentalCause.DISPUTE_WON: "Dispute resolved",
    RentalCause.DISPUTE_LOST: "Dispute lost",
    RentalCause.PLAN_CHANGED: "Plan changed",
    RentalCause.TERMINATION_WARNING: "Server to be deleted",
    RentalCause.ENDED: "Rental ended",
}


def _rental_entry(event: RentalChanged, at: datetime) -> TimelineEntry:
    """``rental_<cause>``: what changed, in the customer's words (the dates as the status message writes them)."""
    rental, cause = event.payload, event.payload.cause

    def on(moment: datetime) -> str:
        return day(moment, event.occurred_at)

    paid = money(rental.amount, rental.currency) if rental.amount and rental.currency else None
    runs = None
    if rental.renews_at is not None:
        runs = f"renews on {on(rental.renews_at)}"
    elif rental.kind == "fixed_term" and rental.paid_through is not None:
        runs = f"paid until {on(rental.paid_through)}"
    kept = f"files are kept until {on(rental.terminate_at)}" if rental.terminate_at is not None else None
    grace = f"your server keeps running until {on(rental.grace_until)}" if rental.grace_until is not None else None
    detail: list[str | None]
    if cause in (RentalCause.ACTIVATED, RentalCause.RENEWED, RentalCause.RECOVERED):
        detail = [f"{paid} paid" if paid else None, runs]
    elif cause == RentalCause.PAYMENT_FAILED:
        retry = (
            f"we will try again on {on(rental.next_payment_attempt)}"
            if rental.next_payment_attempt is not None
            else "pay the open invoice"
        )
        detail = [f"The payment did not go through: {retry}", grace]
    elif cause == RentalCause.PAYMENT_ACTION_REQUIRED:
        detail = ["Your bank asks you to confirm the payment: pay the open invoice", grace]
    elif cause == RentalCause.CANCELLATION_SCHEDULED:
        detail = [f"Your server runs until {on(rental.ends_at)}" if rental.ends_at is not None else None]
    elif cause in (RentalCause.CANCELLATION_UNDONE, RentalCause.DISPUTE_WON):
        detail = ["Your rental goes on", runs]
    elif cause == RentalCause.LAPSED:
        again = "pay again" if rental.kind == "fixed_term" else "pay the open invoice"
        detail = [f"Your server is being suspended; {again} to get it back", kept]
    elif cause == RentalCause.REFUNDED:
        detail = [
            f"{paid} returned to you" if paid else "The payment was returned to you",
            "your server is being suspended",
            kept,
        ]
    elif cause == RentalCause.DISPUTE_OPENED:
        detail = ["The payment is disputed with your bank; your server is being suspended until it is resolved", kept]
    elif cause == RentalCause.DISPUTE_LOST:
        detail = ["The bank returned the disputed payment; the rental has ended", kept]
    elif cause == RentalCause.PLAN_CHANGED:
        detail = ["Your server moves to its new plan", runs]
    elif cause == RentalCause.TERMINATION_WARNING:
        detail = [
            f"Your server and its files will be deleted on {on(rental.terminate_at)}"
            if rental.terminate_at is not None
            else "Your server and its files will be deleted soon"
        ]
    else:  # ended
        detail = ["Your rental has ended", kept]
    words = "; ".join(d for d in detail if d)
    return TimelineEntry(
        at, f"rental_{cause.value}", _RENTAL_TITLES[cause], words[:1].upper() + words[1:] if words else None
    )


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
    if isinstance(event, NotificationSent):
        sent = event.payload
        return (
            f"e-mail sent: {sent.kind} to the {sent.recipient} ({sent.locale}) for {sent.caused_by}, "
            f"Message-ID {sent.message_id}, after {sent.attempts} attempt(s)"
        )
    return _rental_summary(event) or event.event_type


def _when(moment: datetime | None) -> str:
    return moment.isoformat() if moment is not None else "-"


def _rental_summary(event: Event) -> str | None:
    """The operator's line for the rental and panel-outcome events (every id and reason)."""
    if isinstance(event, RentalChanged):
        r = event.payload
        moved = f", {money(r.amount, r.currency)}" if r.amount is not None and r.currency else ""
        detail = "".join(f", {k}={v}" for k, v in sorted(r.detail.items()))
        return (
            f"rental v{r.version} {r.phase.value} ({r.cause.value}): {r.kind} {r.plan_id}/{r.period_id}, "
            f"paid_through {_when(r.paid_through)}, renews_at {_when(r.renews_at)}, ends_at {_when(r.ends_at)}, "
            f"next_payment_attempt {_when(r.next_payment_attempt)}, grace_until {_when(r.grace_until)}, "
            f"terminate_at {_when(r.terminate_at)}, subscription {r.subscription_id or '-'}, "
            f"invoice {r.invoice_id or '-'}{moved}{detail}"
        )
    if isinstance(event, DesiredServerStateChanged):
        d = event.payload
        limits = d.limits
        return (
            f"desired server state v{d.version}: {d.state.value} ({d.reason.value}), plan {d.plan_id}, "
            f"memory {limits.memory} MiB, disk {limits.disk} MiB, cpu {limits.cpu}%"
        )
    if isinstance(event, ServerSuspended | ServerUnsuspended):
        toggled = event.payload
        verb = "suspended" if isinstance(event, ServerSuspended) else "unsuspended"
        return f"panel: server {toggled.server_id} {verb} (desired v{toggled.desired_version}, reason {toggled.reason})"
    if isinstance(event, ServerResized):
        resized, size = event.payload, event.payload.limits
        return (
            f"panel: server {resized.server_id} resized to plan {resized.plan_id} "
            f"(desired v{resized.desired_version}): memory {size.memory} MiB, disk {size.disk} MiB, cpu {size.cpu}%"
        )
    if isinstance(event, ServerTerminated):
        gone = event.payload
        how = ", already gone" if gone.already_gone else ""
        forced = ", forced by an operator" if gone.forced else ""
        return f"panel: server {gone.server_id} terminated (desired v{gone.desired_version}{how}{forced})"
    if isinstance(event, ServerActionFailed):
        f = event.payload
        on_server = f", server {f.server_id}" if f.server_id is not None else ""
        detail = "".join(f", {k}={v}" for k, v in sorted(f.detail.items()))
        replay = "replayable" if f.replayable else "not replayable"
        return (
            f"{f.action.value} failed: {f.reason}: {f.message} (desired v{f.desired_version}, "
            f"after {f.attempts} attempts, {replay}{on_server}{detail})"
        )
    return None
