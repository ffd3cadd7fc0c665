"""Money taken back outside dunning: a refund made in Stripe's Dashboard, and disputes.

The policy (``docs/payments.md``): a full refund we did not make, or a dispute opened, suspends the server
at once (the rental lapses with a hold that Stripe's subscription state cannot lift); a dispute won gives
the server back; a dispute lost ends the rental. A refund and a lost dispute also end the subscription at
Stripe (after the commit), so nobody is billed for a server they cannot use; an open dispute leaves it,
since a won one simply runs on. The server is deleted after the retention, as for any lapse.

Stripe's events about a charge carry no order, so ``find`` works it out: a one-time order by its
PaymentIntent, a subscription's by the invoice the payment paid. The charge or dispute is read from Stripe
again (a dispute's events can arrive in any order: whatever arrives, it is its current status that
counts), and the decision is taken under the rental's row lock, so each outcome happens once.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from spawnpoint_kit.logs import get_logger

from ..adapters.stripe_gateway import BillingGateway
from ..domain.refunds import RefundState
from ..domain.rental import Assessment, Hold, RentalPolicy, apply_dispute_outcome, place_hold
from ..domain.stripe_events import RetryLater
from .rentals import record, rental_of, state_of
from .unit_of_work import PaymentUnitOfWork

log = get_logger(__name__)

DISPUTE_OPEN = frozenset({"warning_needs_response", "warning_under_review", "needs_response", "under_review"})
DISPUTE_WON = frozenset({"won", "warning_closed", "prevented"})


@dataclass(frozen=True)
class MoneyBack:
    """A charge or dispute as Stripe has it now, and the order it belongs to."""

    kind: str  # "refund" or "dispute"
    object_id: str
    payment_intent: str | None
    order_id: uuid.UUID | None
    subscription_id: str | None
    refunded_in_full: bool = False
    dispute_status: str | None = None


async def read(
    billing: BillingGateway,
    event_type: str,
    payload: dict[str, Any],
    unit_of_work: Callable[[], PaymentUnitOfWork],
) -> MoneyBack:
    """The event's object read again from Stripe, and its order (outside any transaction)."""
    obj = (payload.get("data") or {}).get("object") or {}
    kind = "dispute" if event_type.startswith("charge.dispute.") else "refund"
    current = await billing.retrieve_object("dispute" if kind == "dispute" else "charge", str(obj["id"]))
    payment_intent = current.get("payment_intent")
    payment_intent = payment_intent.get("id") if isinstance(payment_intent, dict) else payment_intent
    order_id: uuid.UUID | None = None
    subscription_id: str | None = None
    if payment_intent:
        async with unit_of_work() as uow:
            payment = await uow.payments.by_payment_intent(str(payment_intent))
        if payment is not None:
            order_id = payment.order_id
        else:
            subscription_id = await billing.subscription_of_payment(str(payment_intent))
    return MoneyBack(
        kind=kind,
        object_id=str(obj["id"]),
        payment_intent=str(payment_intent) if payment_intent else None,
        order_id=order_id,
        subscription_id=subscription_id,
        refunded_in_full=bool(current.get("refunded")),
        dispute_status=current.get("status") if kind == "dispute" else None,
    )


async def apply(
    uow: PaymentUnitOfWork, money: MoneyBack, *, policy: RentalPolicy, now: datetime | None = None
) -> tuple[str, str | None]:
    """The policy's outcome for the order, once; returns it and the subscription to end at Stripe (the
    caller ends it after the commit), if any."""
    now = now or datetime.now(UTC)
    order_id = money.order_id
    if order_id is None and money.subscription_id is not None:
        found = await uow.rentals.by_subscription(money.subscription_id)
        order_id = found.order_id if found is not None else None
    if order_id is None:
        if money.payment_intent is None:
            return "not_ours", None
        raise RetryLater(f"no order of ours is known for payment {money.payment_intent} yet")
    payment = await uow.payments.lock(order_id)
    if payment is None:
        raise RetryLater(f"order {order_id} is not known to payment-service yet")
    rental = await rental_of(uow, payment)
    before = state_of(rental)
    assessment: Assessment
    if money.kind == "refund":
        if not money.refunded_in_full:
            return "partial_refund", None
        if await _ours(uow, order_id):
            return "own_refund", None  # our refund policy made it, and already decided what it means
        assessment = place_hold(before, Hold.REFUNDED, policy, now)
    elif money.dispute_status in DISPUTE_OPEN:
        assessment = place_hold(before, Hold.DISPUTED, policy, now)
    elif money.dispute_status in DISPUTE_WON:
        assessment = apply_dispute_outcome(before, True, policy, now)
    elif money.dispute_status == "lost":
        held = place_hold(before, Hold.DISPUTED, policy, now)  # the opening may not have arrived yet
        if held.changed:
            detail = {"dispute": money.object_id}
            record(uow, rental, payment, held, via="webhook", now=now, policy=policy, detail=detail)
        assessment = apply_dispute_outcome(state_of(rental), False, policy, now)
    else:
        return "no_change", None
    detail = {"dispute" if money.kind == "dispute" else "charge": money.object_id}
    outcome = record(uow, rental, payment, assessment, via="webhook", now=now, policy=policy, detail=detail)
    # A refund or a lost dispute ends the subscription too (nobody is billed for a server they cannot use);
    # an open dispute only suspends: if it is won the rental simply runs on.
    ends = outcome in ("refunded", "dispute_lost") and rental.subscription_id is not None
    return outcome, rental.subscription_id if ends else None


async def _ours(uow: PaymentUnitOfWork, order_id: uuid.UUID) -> bool:
    """A refund this service decided (its row exists and reached Stripe, or is about to)."""
    for refund in await uow.refunds.of_order(order_id):
        if refund.status in (RefundState.EXECUTING, RefundState.SUCCEEDED):
            return True
    return False
