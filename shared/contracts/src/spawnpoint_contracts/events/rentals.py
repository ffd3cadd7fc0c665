"""Facts about a rental: what the customer owes and has paid, and what that means for their server.

Payment-service owns the rental. It tells the others two things, in two events:

- ``RentalChanged`` carries the whole rental as it now is (event-carried state) and the ``cause`` of the
  change. Each carries a ``version`` that only grows per order, so a reader that sees them late, twice or
  out of order keeps the one with the highest version and never shows an older state over a newer one.
  The status timeline and the notification service switch on ``cause``.
- ``DesiredServerStateChanged`` says what the server should be on the panel (running, suspended or
  terminated, and its build limits). It is a desired state with a version, not a command: the
  provisioner converges the panel to the highest version it has seen, so a suspend and an unsuspend that
  arrive in either order, twice or after a crash end in the state of the newer one.
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar, Literal

from pydantic import AwareDatetime, Field

from ..envelope import Event, WireModel
from ..models import FeatureLimits, Limits


class RentalPhase(StrEnum):
    """Where a rental is in its life (``docs/payments.md`` has the state machine)."""

    AWAITING_PAYMENT = "awaiting_payment"
    ACTIVE = "active"
    PAST_DUE = "past_due"
    """A renewal failed and Stripe is retrying: the grace period, the server keeps running."""
    CANCELLING = "cancelling"
    """Cancelled at the period end: runs until ``ends_at``."""
    LAPSED = "lapsed"
    """Not paid for (retries exhausted, refunded, disputed): the server is suspended, kept until
    ``terminate_at``; paying the open invoice brings it back."""
    ENDED = "ended"


class RentalCause(StrEnum):
    """Why the rental changed: one per lifecycle moment a customer is told about."""

    ACTIVATED = "activated"
    RENEWED = "renewed"
    PAYMENT_FAILED = "payment_failed"
    PAYMENT_ACTION_REQUIRED = "payment_action_required"
    RECOVERED = "recovered"
    CANCELLATION_SCHEDULED = "cancellation_scheduled"
    CANCELLATION_UNDONE = "cancellation_undone"
    LAPSED = "lapsed"
    REFUNDED = "refunded"
    DISPUTE_OPENED = "dispute_opened"
    DISPUTE_WON = "dispute_won"
    DISPUTE_LOST = "dispute_lost"
    PLAN_CHANGED = "plan_changed"
    TERMINATION_WARNING = "termination_warning"
    ENDED = "ended"


class RentalChangedPayload(WireModel):
    version: int = Field(ge=1, description="Grows with every change of this order's rental.")
    phase: RentalPhase
    cause: RentalCause
    kind: Literal["subscription", "fixed_term"]
    plan_id: str
    period_id: str
    paid_through: AwareDatetime | None = Field(
        default=None, description="The end of the period paid for (the subscription item's period end)."
    )
    renews_at: AwareDatetime | None = Field(default=None, description="When the next payment is taken, if it is.")
    ends_at: AwareDatetime | None = Field(default=None, description="When a cancelled rental stops running.")
    next_payment_attempt: AwareDatetime | None = Field(
        default=None, description="While past due: when Stripe tries the card again (null once it stops)."
    )
    grace_until: AwareDatetime | None = Field(
        default=None, description="While past due: the server keeps running at least until then."
    )
    terminate_at: AwareDatetime | None = Field(
        default=None, description="Lapsed or ended: when the server and its files are deleted."
    )
    subscription_id: str | None = None
    invoice_id: str | None = Field(default=None, description="The invoice behind this change, if one is.")
    amount: int | None = Field(default=None, ge=0, description="Money that moved with this change (minor units).")
    currency: str | None = Field(default=None, min_length=3, max_length=3)
    detail: dict[str, str] = Field(default_factory=dict, description="Cause-specific facts (dispute id, refund id).")


class RentalChanged(Event):
    """The rental's whole state after a change, and why it changed. Keep the highest ``version``."""

    routing_key: ClassVar[str] = "rental.changed.v1"
    event_type: Literal["RentalChanged"] = "RentalChanged"
    event_version: Literal[1] = 1
    payload: RentalChangedPayload


class DesiredServerState(StrEnum):
    RUNNING = "running"
    SUSPENDED = "suspended"
    TERMINATED = "terminated"


class DesiredServerStateChangedPayload(WireModel):
    version: int = Field(ge=1, description="Grows per order; the provisioner converges to the highest it saw.")
    state: DesiredServerState
    reason: RentalCause
    plan_id: str
    limits: Limits = Field(description="The complete build the plan gives: the panel rejects partial bodies.")
    feature_limits: FeatureLimits


class DesiredServerStateChanged(Event):
    """What the order's server should be on the panel now. Desired state, not a command."""

    routing_key: ClassVar[str] = "rental.desired_state_changed.v1"
    event_type: Literal["DesiredServerStateChanged"] = "DesiredServerStateChanged"
    event_version: Literal[1] = 1
    payload: DesiredServerStateChangedPayload
