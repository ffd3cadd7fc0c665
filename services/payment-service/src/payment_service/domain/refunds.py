"""When money goes back to the customer: the refund rules, free of I/O.

Two kinds of refund exist:

- **the order's payment** (key ``refund:<order_id>``): after a provisioning failure that an operator's
  replay cannot fix, or when a payment arrives for an order that had already ended unpaid (its checkout
  expired, or its delayed payment failed). It moves the payment to ``refund_pending`` then ``refunded``
  and announces ``OrderRefunded``. There is one such key per order, so the order's payment is refunded at
  most once whatever arrives twice;
- **a duplicate payment** (key ``refund:<order_id>:<payment_intent>``): a second session of the same
  order was paid as well. That money is returned on its own; the order, which holds its first payment,
  is not touched and no event is published (consumers read ``OrderRefunded`` as "this order was
  refunded").

Provisioning failures follow ``REFUND_POLICY``: ``immediate``, ``hold`` (wait ``REFUND_HOLD_SECONDS``
so that an operator can still fix the cause and replay) or ``never`` (operators refund by hand). Only
failures marked ``replayable == False`` are refunded automatically; a replayable one (no capacity,
panel credentials, an unknown egg) waits for the operator's replay. A held refund is cancelled when a
later sign of provisioning progress arrives (the server was created or installed, or the request was
replayed), and is re-checked just before the money moves.

A refund row moves through ``REFUND`` (below): ``scheduled`` -> ``executing`` (the worker took it; again
after a transient failure) -> ``succeeded`` or ``failed`` (Stripe refused: an operator looks at it);
a ``scheduled`` one may be ``cancelled`` (no longer warranted), and a cancelled one scheduled again by a
later failure. An operator retries a ``failed`` one by setting it back to ``scheduled`` by hand (see
docs/payments.md); the code never does.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from spawnpoint_kit.state_machine import StateMachine

from .payment import PaymentStatus


class RefundPolicy(StrEnum):
    IMMEDIATE = "immediate"
    HOLD = "hold"
    NEVER = "never"


class RefundReason(StrEnum):
    PROVISIONING_FAILED = "provisioning_failed"
    PAID_AFTER_EXPIRY = "paid_after_expiry"
    PAID_AFTER_FAILURE = "paid_after_failure"
    DUPLICATE_PAYMENT = "duplicate_payment"
    AMOUNT_MISMATCH = "amount_mismatch"
    """Stripe took a different amount or currency than the order costs: the money goes back, the order ends."""


class RefundKind(StrEnum):
    ORDER = "order"
    DUPLICATE = "duplicate"


class RefundState(StrEnum):
    SCHEDULED = "scheduled"
    EXECUTING = "executing"
    SUCCEEDED = "succeeded"
    CANCELLED = "cancelled"
    FAILED = "failed"


class RefundTrigger(StrEnum):
    EXECUTE = "execute"
    SUCCEED = "succeed"
    FAIL = "fail"
    CANCEL = "cancel"
    SCHEDULE = "schedule"


REFUND_TRANSITIONS: dict[tuple[RefundState, RefundTrigger], RefundState] = {
    (RefundState.SCHEDULED, RefundTrigger.EXECUTE): RefundState.EXECUTING,
    (RefundState.EXECUTING, RefundTrigger.EXECUTE): RefundState.EXECUTING,  # again, after a transient failure
    (RefundState.EXECUTING, RefundTrigger.SUCCEED): RefundState.SUCCEEDED,
    (RefundState.EXECUTING, RefundTrigger.FAIL): RefundState.FAILED,
    (RefundState.SCHEDULED, RefundTrigger.CANCEL): RefundState.CANCELLED,
    (RefundState.CANCELLED, RefundTrigger.SCHEDULE): RefundState.SCHEDULED,
}
"""Every move the code makes; ``succeeded``, ``failed`` and a ``cancelled`` nobody schedules again are final."""

REFUND: StateMachine[RefundState, RefundTrigger] = StateMachine("refund", REFUND_TRANSITIONS)
"""The refund's machine: every change of ``refunds.status`` goes through it."""


@dataclass(frozen=True)
class RefundRules:
    """``REFUND_POLICY`` and ``REFUND_HOLD_SECONDS``: when a provisioning failure's refund runs."""

    policy: RefundPolicy
    hold: timedelta


STRIPE_REASON: dict[RefundReason, str | None] = {
    RefundReason.PROVISIONING_FAILED: None,
    RefundReason.PAID_AFTER_EXPIRY: "duplicate",
    RefundReason.PAID_AFTER_FAILURE: "duplicate",
    RefundReason.DUPLICATE_PAYMENT: "duplicate",
    RefundReason.AMOUNT_MISMATCH: None,
}
"""Stripe's own ``reason`` (duplicate, fraudulent, requested_by_customer); ours travels in metadata."""


def order_refund_key(order_id: uuid.UUID) -> str:
    """The one idempotency key of the order's own payment (ours and Stripe's)."""
    return f"refund:{order_id}"


def duplicate_refund_key(order_id: uuid.UUID, payment_intent: str) -> str:
    """The idempotency key of an extra payment made for the same order."""
    return f"refund:{order_id}:{payment_intent}"


def reason_for_closed_order(status: PaymentStatus) -> RefundReason:
    """Why money for an order that ended unpaid goes back."""
    return RefundReason.PAID_AFTER_FAILURE if status == PaymentStatus.PAYMENT_FAILED else RefundReason.PAID_AFTER_EXPIRY


@dataclass(frozen=True)
class ProvisioningFacts:
    """What this service knows about the order's provisioning, from the provisioner's events."""

    payment_status: PaymentStatus
    failed_at: datetime | None
    replayable: bool | None
    progress_at: datetime | None
    installed: bool


def refund_warranted(facts: ProvisioningFacts) -> bool:
    """A provisioning refund may happen: the order is paid, its server never got installed, the latest
    failure cannot be fixed by a replay, and nothing has happened since that failure."""
    return (
        facts.payment_status == PaymentStatus.PAID
        and not facts.installed
        and facts.failed_at is not None
        and facts.replayable is False
        and (facts.progress_at is None or facts.progress_at <= facts.failed_at)
    )


def superseded_by_progress(reason: str, cause_at: datetime | None, progress_at: datetime) -> bool:
    """A held provisioning refund is cancelled by progress newer than the failure that caused it."""
    return reason == RefundReason.PROVISIONING_FAILED and (cause_at is None or cause_at < progress_at)


def why_not_refund_now(facts: ProvisioningFacts | None, reason: str) -> str | None:
    """Why an order refund that came due must not run now, or None when it goes ahead. ``facts`` is None
    for an order this service does not know. A payment already ``refund_pending`` was decided before (an
    earlier run, or an operator re-scheduling a failed one)."""
    if facts is None:
        return "the order is not known here"
    if facts.payment_status == PaymentStatus.REFUND_PENDING:
        return None
    if reason == RefundReason.PROVISIONING_FAILED:
        return None if refund_warranted(facts) else "no longer warranted when due"
    return f"the payment is {facts.payment_status.value}"


def refund_due_at(policy: RefundPolicy, hold: timedelta, failed_at: datetime, now: datetime) -> datetime | None:
    """When a warranted provisioning refund should run, or None when the policy says never."""
    if policy == RefundPolicy.NEVER:
        return None
    if policy == RefundPolicy.IMMEDIATE:
        return now
    return max(now, failed_at + hold)


def retry_delay(attempts: int, cap: float = 300.0) -> timedelta:
    """Backoff after a failed Stripe call (1 s, 2 s, 4 s, ... up to ``cap``)."""
    return timedelta(seconds=min(cap, float(2 ** min(attempts, 16))))
