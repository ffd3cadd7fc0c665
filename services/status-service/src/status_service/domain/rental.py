"""The rental as a customer sees it, as a pure function of the set of events an order has received.

payment-service sends the rental's whole state in every ``RentalChanged``, with a ``version`` that only
grows per order. So the rental shown is the one with the **highest version**, whatever order the events
arrived in, however often: a late, doubled or reordered delivery of an older version is never shown over a
newer one (equal versions, which a correct producer never sends, are broken by the event's clock and id,
so the choice is still a function of the set). ``RentalChanged`` events from before the latest one are
consulted only to say *why* a lapsed rental is suspended (the latest may be a ``termination_warning``).

What the panel shows comes from the provisioner's outcomes, each naming the ``desired_version`` it made
the panel match; the one with the highest ``desired_version`` is what the panel last confirmed:

- ``ServerTerminated`` is final: the server and its files are gone, whatever else arrives;
- else the newest ``ServerSuspended`` / ``ServerUnsuspended`` (by ``desired_version``) says ``suspended``
  or ``running``;
- else ``ServerInstalled`` says ``running``; before it, ``server_state`` is null: never "running" before
  the panel confirmed the server exists and is installed;
- ``ServerResized`` changes the limits, not the state; ``ServerActionFailed`` changes nothing on the panel
  (only the wording while a restore is pending); ``DesiredServerStateChanged`` is a wish, not a fact, and
  is only in the operator's trail.

The customer's phase, strongest first:

1. the panel confirmed the server terminated, or the rental ended: ``ended``;
2. the rental lapsed, or the panel confirmed the server suspended: ``suspended``;
3. otherwise the rental's own phase: ``awaiting_payment``, ``active``, ``past_due`` or ``cancelling``.

The message is a sentence a customer understands (the table is in ``docs/status-api.md``). Dates are
written as ``3 Dec`` (UTC; with the year when it is more than about half a year away from the change) and
the exact instants are in the object's fields for a page that prefers the reader's time zone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from spawnpoint_contracts import (
    Event,
    RentalCause,
    RentalChanged,
    RentalPhase,
    ServerAction,
    ServerActionFailed,
    ServerInstalled,
    ServerSuspended,
    ServerTerminated,
    ServerUnsuspended,
)


class CustomerPhase(StrEnum):
    """The rental's phase in the status body (``rental.phase``)."""

    AWAITING_PAYMENT = "awaiting_payment"
    ACTIVE = "active"
    PAST_DUE = "past_due"
    SUSPENDED = "suspended"
    CANCELLING = "cancelling"
    ENDED = "ended"


class ServerState(StrEnum):
    """What the panel last confirmed about the order's server (``rental.server_state``)."""

    RUNNING = "running"
    SUSPENDED = "suspended"
    TERMINATED = "terminated"


SUSPENDING_CAUSES = frozenset({RentalCause.LAPSED, RentalCause.REFUNDED, RentalCause.DISPUTE_OPENED})
"""Causes that move a rental into ``lapsed`` (why a lapsed rental's server is suspended)."""

_FULL_DATE_AFTER = timedelta(days=180)


@dataclass(frozen=True)
class RentalView:
    """The ``rental`` object of the status body."""

    phase: CustomerPhase
    kind: str
    plan_id: str
    period_id: str
    paid_through: datetime | None
    renews_at: datetime | None
    ends_at: datetime | None
    next_payment_attempt: datetime | None
    grace_until: datetime | None
    terminate_at: datetime | None
    server_state: ServerState | None
    message: str
    version: int
    """The ``RentalChanged`` version shown (operators' bookkeeping; not in the public object)."""

    def public(self) -> dict[str, Any]:
        """JSON-ready, as the status body, the stored row and the notification carry it."""
        return {
            "phase": self.phase.value,
            "kind": self.kind,
            "plan_id": self.plan_id,
            "period_id": self.period_id,
            "paid_through": _iso(self.paid_through),
            "renews_at": _iso(self.renews_at),
            "ends_at": _iso(self.ends_at),
            "next_payment_attempt": _iso(self.next_payment_attempt),
            "grace_until": _iso(self.grace_until),
            "terminate_at": _iso(self.terminate_at),
            "server_state": self.server_state.value if self.server_state is not None else None,
            "message": self.message,
        }


def _iso(moment: datetime | None) -> str | None:
    """UTC ISO 8601 with a ``Z`` (as ``snapshot.iso`` writes every other time)."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z") if moment is not None else None


def day(moment: datetime, reference: datetime) -> str:
    """``3 Dec`` (UTC), or ``3 Dec 2027`` when it is more than about half a year from ``reference``."""
    moment = moment.astimezone(UTC)
    words = f"{moment.day} {moment.strftime('%b')}"
    if abs(moment - reference) > _FULL_DATE_AFTER:
        words += f" {moment.year}"
    return words


def rank(event: RentalChanged) -> tuple[int, datetime, str]:
    """The order in which rental states supersede each other: version first (the clock and the id only
    break ties a correct producer never makes)."""
    return event.payload.version, event.occurred_at, str(event.event_id)


def latest_rental(events: Sequence[Event]) -> RentalChanged | None:
    """The ``RentalChanged`` with the highest version (None when there is none)."""
    rentals = [e for e in events if isinstance(e, RentalChanged)]
    return max(rentals, key=rank) if rentals else None


@dataclass(frozen=True)
class PanelView:
    """What the panel last confirmed, and whether a restore it was asked for failed since."""

    state: ServerState | None
    confirmed_version: int
    """The ``desired_version`` of the outcome that decided ``state`` (0 when none did)."""
    restore_failed: bool


def panel_view(events: Sequence[Event]) -> PanelView:
    """The server's state as the panel last confirmed it (see the module docstring)."""
    terminated = [e for e in events if isinstance(e, ServerTerminated)]
    if terminated:
        return PanelView(ServerState.TERMINATED, max(e.payload.desired_version for e in terminated), False)
    toggles: list[tuple[int, int, ServerState]] = []
    for position, e in enumerate(events):
        if isinstance(e, ServerSuspended):
            toggles.append((e.payload.desired_version, position, ServerState.SUSPENDED))
        elif isinstance(e, ServerUnsuspended):
            toggles.append((e.payload.desired_version, position, ServerState.RUNNING))
    if toggles:
        # Highest desired version; between two of one version (a producer bug), the later in canonical order.
        version, _, state = max(toggles)
        restore_failed = state == ServerState.SUSPENDED and any(
            isinstance(e, ServerActionFailed)
            and e.payload.action == ServerAction.UNSUSPEND
            and e.payload.desired_version > version
            for e in events
        )
        return PanelView(state, version, restore_failed)
    if any(isinstance(e, ServerInstalled) for e in events):
        return PanelView(ServerState.RUNNING, 0, False)
    return PanelView(None, 0, False)


def project_rental(events: Sequence[Event]) -> RentalView | None:
    """The rental of one order from its (deduplicated, canonically ordered) events; None before any
    ``RentalChanged``."""
    latest = latest_rental(events)
    if latest is None:
        return None
    rental = latest.payload
    panel = panel_view(events)
    phase = customer_phase(rental.phase, panel.state)
    suspended_by = _suspended_by(events, latest)
    return RentalView(
        phase=phase,
        kind=rental.kind,
        plan_id=rental.plan_id,
        period_id=rental.period_id,
        paid_through=rental.paid_through,
        renews_at=rental.renews_at,
        ends_at=rental.ends_at,
        next_payment_attempt=rental.next_payment_attempt,
        grace_until=rental.grace_until,
        terminate_at=rental.terminate_at,
        server_state=panel.state,
        message=message(latest, phase, panel, suspended_by),
        version=rental.version,
    )


def customer_phase(phase: RentalPhase, server: ServerState | None) -> CustomerPhase:
    if server == ServerState.TERMINATED or phase == RentalPhase.ENDED:
        return CustomerPhase.ENDED
    if phase == RentalPhase.LAPSED or server == ServerState.SUSPENDED:
        return CustomerPhase.SUSPENDED
    return CustomerPhase(phase.value)


def _suspended_by(events: Sequence[Event], latest: RentalChanged) -> RentalCause | None:
    """Why a lapsed rental lapsed: the cause of the newest change that moved it there (up to the latest)."""
    moves = [
        e
        for e in events
        if isinstance(e, RentalChanged) and e.payload.cause in SUSPENDING_CAUSES and rank(e) <= rank(latest)
    ]
    return max(moves, key=rank).payload.cause if moves else None


# the customer's sentence -------------------------------------------------------------------------------

_ACTIVE_PREFIX: dict[RentalCause, str] = {
    RentalCause.RECOVERED: "Payment received. ",
    RentalCause.CANCELLATION_UNDONE: "Cancellation undone. ",
    RentalCause.DISPUTE_WON: "Dispute resolved. ",
    RentalCause.PLAN_CHANGED: "Plan changed. ",
}

_SUSPENDED_WHY: dict[RentalCause | None, str] = {
    RentalCause.LAPSED: "Suspended: the payment did not come through. Pay the open invoice to get it back",
    RentalCause.REFUNDED: "Suspended: the payment was refunded",
    RentalCause.DISPUTE_OPENED: "Suspended while the payment is disputed with your bank",
    None: "Suspended",
}
_FIXED_TERM_OVER = "Suspended: the paid time is over. Pay again to get it back"


def message(latest: RentalChanged, phase: CustomerPhase, panel: PanelView, suspended_by: RentalCause | None) -> str:
    """The sentence for the customer (never an id, a panel error or a reason code)."""
    rental, cause = latest.payload, latest.payload.cause

    def on(moment: datetime) -> str:
        return day(moment, latest.occurred_at)

    if phase == CustomerPhase.ENDED:
        return _ended(rental.terminate_at, cause, panel.state, on)
    if phase == CustomerPhase.SUSPENDED:
        if rental.phase != RentalPhase.LAPSED:
            # Paid for (or still in grace), but the panel still shows the server suspended.
            if panel.restore_failed:
                return "Suspended: we could not restore your server yet. Our team has been notified"
            if panel.confirmed_version <= rental.version:
                return "Suspended: your server is being restored"
            return "Suspended: your files are kept"
        why = _SUSPENDED_WHY.get(suspended_by, "Suspended")
        if suspended_by == RentalCause.LAPSED and rental.kind == "fixed_term":
            why = _FIXED_TERM_OVER
        if rental.terminate_at is None:
            return why
        if cause == RentalCause.TERMINATION_WARNING:
            return f"{why}. Your server and its files will be deleted on {on(rental.terminate_at)}"
        return f"{why}{': ' if why == 'Suspended' else '; '}files are kept until {on(rental.terminate_at)}"
    if phase == CustomerPhase.AWAITING_PAYMENT:
        return "Waiting for the first payment"
    if phase == CustomerPhase.PAST_DUE:
        if cause == RentalCause.PAYMENT_ACTION_REQUIRED:
            first = "Payment needs your confirmation: pay the open invoice"
        elif rental.next_payment_attempt is not None:
            first = f"Payment failed: we will try again on {on(rental.next_payment_attempt)}"
        else:
            first = "Payment failed: pay the open invoice"
        if rental.grace_until is None:
            return first
        return f"{first}; your server keeps running until {on(rental.grace_until)}"
    if phase == CustomerPhase.CANCELLING:
        return f"Cancelled: runs until {on(rental.ends_at)}" if rental.ends_at is not None else "Cancelled"
    prefix = _ACTIVE_PREFIX.get(cause, "")
    if rental.renews_at is not None:
        return f"{prefix}Renews on {on(rental.renews_at)}"
    if rental.kind == "fixed_term" and rental.paid_through is not None:
        return f"{prefix}Paid until {on(rental.paid_through)}"
    return f"{prefix}Active"


def _ended(
    terminate_at: datetime | None, cause: RentalCause, server: ServerState | None, on: Callable[[datetime], str]
) -> str:
    if server == ServerState.TERMINATED:
        return "Ended: your server and its files were deleted"
    lost = cause == RentalCause.DISPUTE_LOST
    first = "Ended: the bank returned the disputed payment" if lost else "Ended"
    if terminate_at is None:
        return first
    if cause == RentalCause.TERMINATION_WARNING:
        return f"{first}. Your server and its files will be deleted on {on(terminate_at)}"
    return f"{first}{'; ' if lost else ': '}files are kept until {on(terminate_at)}"
