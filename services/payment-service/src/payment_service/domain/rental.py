"""The rental of one order: what the customer owes and has paid, and what that means for their server.

Stripe's events arrive late, twice and in any order, and one can be lost entirely. So a rental is never
moved by what an event *says*: the subscription (with its latest invoice) is retrieved from Stripe and
``assess`` works out which phase Stripe's state means, and why it changed since we last looked
(``RentalCause``). The webhook, the deadline job and the reconciler all go through that one function, so
they cannot disagree, and a duplicate or a stale event assesses to "no change".

```
awaiting_payment --activated--> active --renewed--> active
active --payment_failed--> past_due --payment_failed--> past_due      (grace: the server keeps running)
past_due --recovered--> active
active | past_due --lapsed--> lapsed --recovered--> active             (the open invoice paid)
active --cancellation_scheduled--> cancelling --cancellation_undone--> active
cancelling --ended--> ended
active | past_due | cancelling --refunded | dispute_opened--> lapsed  (docs/payments.md: suspend at once)
lapsed --dispute_won--> active        lapsed --dispute_lost--> ended        lapsed --ended--> ended
```

A fixed term (paid once, up front) is the same machine without Stripe's dunning: ``active --lapsed-->
lapsed`` when its ``paid_through`` passes, ``--renewed--> active`` when it is paid again.

Every transition is recorded with its cause; the state machine only says which moves exist. Which server
state each phase asks of the panel is ``desired_server_state``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from spawnpoint_contracts import DesiredServerState, RentalCause, RentalPhase
from spawnpoint_kit.state_machine import StateMachine

P, C = RentalPhase, RentalCause

TRANSITIONS: dict[tuple[RentalPhase, RentalCause], RentalPhase] = {
    (P.AWAITING_PAYMENT, C.ACTIVATED): P.ACTIVE,
    (P.AWAITING_PAYMENT, C.ENDED): P.ENDED,
    (P.ACTIVE, C.RENEWED): P.ACTIVE,
    (P.ACTIVE, C.PLAN_CHANGED): P.ACTIVE,
    (P.ACTIVE, C.PAYMENT_FAILED): P.PAST_DUE,
    (P.ACTIVE, C.PAYMENT_ACTION_REQUIRED): P.PAST_DUE,
    (P.ACTIVE, C.CANCELLATION_SCHEDULED): P.CANCELLING,
    (P.ACTIVE, C.LAPSED): P.LAPSED,
    (P.ACTIVE, C.REFUNDED): P.LAPSED,
    (P.ACTIVE, C.DISPUTE_OPENED): P.LAPSED,
    (P.ACTIVE, C.ENDED): P.ENDED,
    (P.PAST_DUE, C.PAYMENT_FAILED): P.PAST_DUE,
    (P.PAST_DUE, C.PAYMENT_ACTION_REQUIRED): P.PAST_DUE,
    (P.PAST_DUE, C.PLAN_CHANGED): P.PAST_DUE,
    (P.PAST_DUE, C.RECOVERED): P.ACTIVE,
    (P.PAST_DUE, C.LAPSED): P.LAPSED,
    (P.PAST_DUE, C.REFUNDED): P.LAPSED,
    (P.PAST_DUE, C.DISPUTE_OPENED): P.LAPSED,
    (P.PAST_DUE, C.ENDED): P.ENDED,
    (P.CANCELLING, C.CANCELLATION_UNDONE): P.ACTIVE,
    (P.CANCELLING, C.PLAN_CHANGED): P.CANCELLING,
    (P.CANCELLING, C.REFUNDED): P.LAPSED,
    (P.CANCELLING, C.DISPUTE_OPENED): P.LAPSED,
    (P.CANCELLING, C.ENDED): P.ENDED,
    (P.LAPSED, C.RECOVERED): P.ACTIVE,
    (P.LAPSED, C.RENEWED): P.ACTIVE,
    (P.LAPSED, C.DISPUTE_WON): P.ACTIVE,
    (P.LAPSED, C.DISPUTE_LOST): P.ENDED,
    (P.LAPSED, C.TERMINATION_WARNING): P.LAPSED,
    (P.LAPSED, C.ENDED): P.ENDED,
    (P.ENDED, C.TERMINATION_WARNING): P.ENDED,
}
"""Every move a rental may make; a pair not listed is refused (``InvalidTransition``)."""

RENTAL: StateMachine[RentalPhase, RentalCause] = StateMachine("rental", TRANSITIONS)

RUNNING_PHASES = frozenset({P.AWAITING_PAYMENT, P.ACTIVE, P.PAST_DUE, P.CANCELLING})
"""Phases in which the customer's server runs (past due included: Stripe is still retrying)."""


class Hold(StrEnum):
    """Why a rental is suspended whatever Stripe's subscription says: money taken back outside dunning."""

    REFUNDED = "refunded"
    DISPUTED = "disputed"


@dataclass(frozen=True)
class RentalPolicy:
    """The shop's terms (``docs/payments.md``), from settings."""

    grace: timedelta = timedelta(days=14)
    """How long a past-due server keeps running at least (Stripe's recommended retry window is 2 weeks)."""
    retention: timedelta = timedelta(days=7)
    """How long a lapsed or ended server is kept, suspended, before it is deleted."""
    termination_warning: timedelta = timedelta(days=2)
    """How long before the deletion the customer is warned."""


@dataclass(frozen=True)
class InvoiceFacts:
    """The parts of a Stripe invoice a rental depends on."""

    id: str
    status: str
    billing_reason: str | None
    attempt_count: int
    next_payment_attempt: datetime | None
    amount_paid: int
    amount_due: int
    currency: str
    created: datetime | None = None


@dataclass(frozen=True)
class SubscriptionFacts:
    """A Stripe subscription as it is now (retrieved, never an event's snapshot)."""

    id: str
    status: str
    current_period_end: datetime | None
    """The latest item's period end: what has been paid for (basil moved it to the items)."""
    cancel_at: datetime | None
    cancel_at_period_end: bool
    ended_at: datetime | None
    cancellation_reason: str | None
    latest_invoice: InvoiceFacts | None
    price_id: str | None = None
    current_period_start: datetime | None = None
    """Where the current period began: what is paid for while the invoice for the period is not paid yet."""

    @property
    def paid_period_end(self) -> datetime | None:
        """The end of what has been paid for. Stripe rolls the period over at the renewal and charges an
        hour later (the draft invoice is finalized first): until the latest invoice is paid, the new
        period is not paid for, and what was paid ends where it began."""
        invoice = self.latest_invoice
        if invoice is None or invoice.status == "paid" or self.current_period_start is None:
            return self.current_period_end
        return self.current_period_start

    @property
    def scheduled_to_cancel(self) -> bool:
        """The portal may set ``cancel_at`` and leave ``cancel_at_period_end`` false: either means it ends."""
        return self.cancel_at is not None or self.cancel_at_period_end


@dataclass(frozen=True)
class RentalState:
    """A rental as this service last recorded it: the input and the output of ``assess``."""

    phase: RentalPhase
    paid_through: datetime | None = None
    renews_at: datetime | None = None
    ends_at: datetime | None = None
    next_payment_attempt: datetime | None = None
    grace_until: datetime | None = None
    terminate_at: datetime | None = None
    attempt_count: int = 0
    hold: Hold | None = None
    invoice_id: str | None = None


@dataclass(frozen=True)
class Assessment:
    """What Stripe's state means for the rental: the new state and the steps that led there.

    ``steps`` is empty when nothing a customer would be told about changed (a duplicate, a stale event;
    ``state`` may still differ in bookkeeping such as the next retry time). It has more than one step when
    events were missed and the rental catches up (a lost ``invoice.paid`` then a failed renewal:
    ``activated``, ``payment_failed``): each step is a move of the table, recorded with its cause."""

    state: RentalState
    steps: tuple[tuple[RentalCause, RentalPhase], ...] = ()

    @property
    def cause(self) -> RentalCause | None:
        """The cause the customer is told about: the last step's."""
        return self.steps[-1][0] if self.steps else None

    @property
    def changed(self) -> bool:
        return bool(self.steps)


def path(
    start: RentalPhase, target: RentalPhase, first: RentalCause | None = None
) -> tuple[tuple[RentalCause, RentalPhase], ...]:
    """The shortest run of allowed moves from ``start`` to ``target`` (``first`` tried first when it is
    one), or () when the table has none. Breadth-first over the table, in its order, so it is stable."""
    if first is not None and RENTAL.next(start, first) == target:
        return ((first, target),)
    frontier: list[tuple[RentalPhase, tuple[tuple[RentalCause, RentalPhase], ...]]] = [(start, ())]
    seen = {start}
    while frontier:
        phase, steps = frontier.pop(0)
        for cause in RENTAL.triggers_from(phase):
            if cause in _NEVER_INFERRED:
                continue
            nxt = RENTAL.step(phase, cause)
            if nxt == target:
                return (*steps, (cause, nxt))
            if nxt not in seen:
                seen.add(nxt)
                frontier.append((nxt, (*steps, (cause, nxt))))
    return ()


_NEVER_INFERRED = frozenset({C.REFUNDED, C.DISPUTE_OPENED, C.DISPUTE_WON, C.DISPUTE_LOST, C.TERMINATION_WARNING})
"""Moves only their own facts make (a refund, a dispute): never guessed to fill a gap."""


def _stripe_phase(facts: SubscriptionFacts) -> RentalPhase:
    """Which phase Stripe's subscription alone means."""
    invoice = facts.latest_invoice
    if facts.status in {"incomplete", "incomplete_expired"}:
        return P.ENDED if facts.status == "incomplete_expired" else P.AWAITING_PAYMENT
    if facts.status == "canceled":
        return P.LAPSED if facts.cancellation_reason == "payment_failed" else P.ENDED
    if facts.status in {"unpaid", "paused"}:
        return P.LAPSED
    if facts.status == "past_due":
        retrying = invoice is not None and invoice.status == "open" and invoice.next_payment_attempt is not None
        return P.PAST_DUE if retrying else P.LAPSED
    # active or trialing
    if facts.scheduled_to_cancel:
        return P.CANCELLING
    return P.ACTIVE


def assess(before: RentalState, facts: SubscriptionFacts, policy: RentalPolicy, now: datetime) -> Assessment:
    """The rental after Stripe's current state, and the steps there (pure, so order-independent: the
    same Stripe state gives the same answer however many events led to it and in whatever order).

    A hold (a refund, or a dispute open or lost) keeps the rental lapsed whatever the subscription says:
    only ``apply_dispute_outcome`` lifts one. An ended rental never comes back (the customer buys again).
    """
    if before.phase == P.ENDED:
        return Assessment(before)
    target = _stripe_phase(facts)
    if before.hold is not None and target in RUNNING_PHASES:
        target = P.LAPSED
    invoice = facts.latest_invoice
    paid_through = before.paid_through
    paid_end = facts.paid_period_end
    if target != P.AWAITING_PAYMENT and paid_end is not None:
        # never shorten what was paid for (an older read); the first period counts once it is paid
        paid_through = max(paid_end, paid_through or paid_end)
    past_due = target == P.PAST_DUE
    grace_until = before.grace_until if before.phase == P.PAST_DUE else None
    if past_due and grace_until is None:
        failed_since = (invoice.created if invoice is not None else None) or now
        grace_until = failed_since + policy.grace
    after = replace(
        before,
        phase=target,
        paid_through=paid_through,
        renews_at=paid_through if target == P.ACTIVE else None,
        ends_at=(facts.cancel_at or paid_through) if target == P.CANCELLING else None,
        next_payment_attempt=invoice.next_payment_attempt if (past_due and invoice is not None) else None,
        grace_until=grace_until if past_due else None,
        attempt_count=invoice.attempt_count if (past_due and invoice is not None) else 0,
        invoice_id=invoice.id if invoice is not None else before.invoice_id,
    )
    after = _with_retention(before, after, policy, now)
    if target == before.phase:
        renewed = target == P.ACTIVE and before.paid_through is not None and paid_through != before.paid_through
        failed_again = past_due and after.attempt_count > before.attempt_count
        if renewed:
            return Assessment(after, ((C.RENEWED, target),))
        if failed_again:
            return Assessment(after, ((C.PAYMENT_FAILED, target),))
        return Assessment(after)
    steps = path(before.phase, target, _preferred_cause(before.phase, target))
    if not steps:
        return Assessment(before)  # Stripe says something the table has no way to (logged by the caller)
    return Assessment(after, steps)


def _preferred_cause(was: RentalPhase, target: RentalPhase) -> RentalCause | None:
    """The cause a direct move from ``was`` to ``target`` has (``path`` falls back to the table)."""
    if target == P.ACTIVE:
        return {
            P.AWAITING_PAYMENT: C.ACTIVATED,
            P.PAST_DUE: C.RECOVERED,
            P.LAPSED: C.RECOVERED,
            P.CANCELLING: C.CANCELLATION_UNDONE,
        }.get(was)
    return {
        P.PAST_DUE: C.PAYMENT_FAILED,
        P.CANCELLING: C.CANCELLATION_SCHEDULED,
        P.LAPSED: C.LAPSED,
        P.ENDED: C.ENDED,
    }.get(target)


def _with_retention(before: RentalState, after: RentalState, policy: RentalPolicy, now: datetime) -> RentalState:
    """A rental entering lapsed or ended gets its deletion time; one leaving lapsed loses it."""
    if after.phase in {P.LAPSED, P.ENDED}:
        return replace(after, terminate_at=before.terminate_at or now + policy.retention)
    return replace(after, terminate_at=None)


def place_hold(before: RentalState, hold: Hold, policy: RentalPolicy, now: datetime) -> Assessment:
    """A dashboard refund or an opened dispute: suspend at once (``docs/payments.md``), whatever Stripe's
    subscription says. A second one for the same rental changes nothing."""
    cause = C.REFUNDED if hold == Hold.REFUNDED else C.DISPUTE_OPENED
    if before.hold is not None or not RENTAL.allows(before.phase, cause):
        return Assessment(before)
    after = _with_retention(before, replace(before, phase=P.LAPSED, hold=hold, renews_at=None), policy, now)
    return Assessment(after, ((cause, after.phase),))


def apply_dispute_outcome(before: RentalState, won: bool, policy: RentalPolicy, now: datetime) -> Assessment:
    """A dispute closed: won gives the server back (the money came back), lost ends the rental."""
    if before.hold != Hold.DISPUTED:
        return Assessment(before)
    if won:
        after = replace(before, phase=P.ACTIVE, hold=None, terminate_at=None, renews_at=before.paid_through)
        return Assessment(after, ((C.DISPUTE_WON, P.ACTIVE),))
    after = _with_retention(before, replace(before, phase=P.ENDED, renews_at=None), policy, now)
    return Assessment(after, ((C.DISPUTE_LOST, P.ENDED),))


def fixed_term_paid(before: RentalState, *, term: timedelta, paid_at: datetime, policy: RentalPolicy) -> Assessment:
    """A fixed term paid (first time or again): it runs ``term`` past the later of now and what was paid."""
    start = max(paid_at, before.paid_through or paid_at)
    cause = C.ACTIVATED if before.phase == P.AWAITING_PAYMENT else C.RENEWED
    if not RENTAL.allows(before.phase, cause):
        return Assessment(before)
    after = replace(before, phase=P.ACTIVE, paid_through=start + term, renews_at=None, terminate_at=None)
    return Assessment(after, ((cause, after.phase),))


def fixed_term_expired(before: RentalState, policy: RentalPolicy, now: datetime) -> Assessment:
    """The deadline job found a fixed term's ``paid_through`` passed: it lapses."""
    if before.phase != P.ACTIVE or before.paid_through is None or before.paid_through > now:
        return Assessment(before)
    after = _with_retention(before, replace(before, phase=P.LAPSED), policy, now)
    return Assessment(after, ((C.LAPSED, P.LAPSED),))


def desired_server_state(phase: RentalPhase, terminate_at: datetime | None, now: datetime) -> DesiredServerState:
    """What the panel should show for a rental in ``phase``: running while it is paid for or Stripe is
    still retrying, suspended once it lapsed or ended, deleted once the retention is over."""
    if phase in RUNNING_PHASES:
        return DesiredServerState.RUNNING
    if terminate_at is not None and terminate_at <= now:
        return DesiredServerState.TERMINATED
    return DesiredServerState.SUSPENDED


class Deadline(StrEnum):
    """What happens when a rental's ``due_at`` passes (worked by ``service_layer.rental_deadlines``)."""

    GRACE_END = "grace_end"
    """Past due for the whole grace period: Stripe is asked once more, and the rental lapses if still unpaid."""
    PERIOD_END = "period_end"
    """A cancelled rental's last paid day: Stripe should have ended the subscription; asked, it ends."""
    TERM_END = "term_end"
    """A fixed term's paid time is over: it lapses (paying again brings it back)."""
    TERMINATION_WARNING = "termination_warning"
    """The customer is told the server and its files will be deleted."""
    TERMINATION = "termination"
    """The retention is over: the server is deleted (``DesiredServerStateChanged`` terminated)."""


def next_deadline(
    state: RentalState, *, kind: str, warned: bool, terminated: bool, policy: RentalPolicy
) -> tuple[datetime, Deadline] | None:
    """The rental's next moment that needs no event from Stripe to happen, or None. Durable: it is a
    column of the rental, leased by whichever process runs the job first (``SKIP LOCKED``)."""
    if state.phase == P.PAST_DUE and state.grace_until is not None:
        return state.grace_until, Deadline.GRACE_END
    if state.phase == P.CANCELLING and state.ends_at is not None:
        return state.ends_at, Deadline.PERIOD_END
    if state.phase == P.ACTIVE and kind == "fixed_term" and state.paid_through is not None:
        return state.paid_through, Deadline.TERM_END
    if state.phase in {P.LAPSED, P.ENDED} and state.terminate_at is not None and not terminated:
        if not warned:
            return state.terminate_at - policy.termination_warning, Deadline.TERMINATION_WARNING
        return state.terminate_at, Deadline.TERMINATION
    return None


def grace_expired(before: RentalState, policy: RentalPolicy, now: datetime) -> Assessment:
    """The grace period ended and Stripe still has not been paid: the rental lapses (the server is
    suspended); a later payment of the open invoice still brings it back."""
    if before.phase != P.PAST_DUE or before.grace_until is None or before.grace_until > now:
        return Assessment(before)
    after = _with_retention(
        before, replace(before, phase=P.LAPSED, next_payment_attempt=None, grace_until=None), policy, now
    )
    return Assessment(after, ((C.LAPSED, P.LAPSED),))


def termination_warning(before: RentalState) -> Assessment:
    """Tell the customer the deletion date (the phase stays as it is)."""
    if not RENTAL.allows(before.phase, C.TERMINATION_WARNING):
        return Assessment(before)
    return Assessment(before, ((C.TERMINATION_WARNING, before.phase),))


def retention_over(before: RentalState, now: datetime) -> Assessment:
    """The retention passed: a lapsed rental ends now; an ended one is only left to delete."""
    if before.terminate_at is None or before.terminate_at > now or before.phase not in {P.LAPSED, P.ENDED}:
        return Assessment(before)
    if before.phase == P.LAPSED:
        return Assessment(replace(before, phase=P.ENDED), ((C.ENDED, P.ENDED),))
    return Assessment(before)
