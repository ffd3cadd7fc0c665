"""Rentals: keeping each order's rental in step with Stripe, and telling the others.

Every path that learns something about a subscription (a stored webhook event, the reconciler, a
deadline) retrieves the subscription from Stripe first, outside any transaction, and hands it here with an
open unit of work. ``sync_subscription`` then, under the rental's row lock:

1. works out what Stripe's state means (``domain.rental.assess``: pure, order-independent, so duplicates
   and stale events change nothing);
2. when the rental is activated and the order is not paid yet (the first ``invoice.paid`` arrived before
   ``checkout.session.completed``), marks the order paid: ``OrderPaid`` once, whichever comes first;
3. records every step with its cause (``rental_transitions``), bumps the rental's version and publishes
   ``RentalChanged``; and when what the server should be changed, ``DesiredServerStateChanged`` with that
   version. A renewal or a failed attempt inside the grace period changes the rental, never the server.

All of it commits in the caller's transaction, with the stored event's ``processed`` mark.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Literal

from spawnpoint_contracts import (
    Billing,
    DesiredServerState,
    DesiredServerStateChanged,
    DesiredServerStateChangedPayload,
    FeatureLimits,
    Limits,
    OrderSnapshot,
    RentalCause,
    RentalChanged,
    RentalChangedPayload,
    RentalPhase,
)
from spawnpoint_kit.logs import get_logger
from spawnpoint_kit.unit_of_work import count_after_commit

from ..adapters.stripe_gateway import Subscription
from ..adapters.tables import PaymentRow, RentalRow, RentalTransitionRow
from ..domain.payment import PAYMENT, PaymentTrigger
from ..domain.rental import (
    Assessment,
    Hold,
    RentalPolicy,
    RentalState,
    assess,
    desired_server_state,
    fixed_term_paid,
    next_deadline,
)
from ..domain.stripe_events import RetryLater
from ..metrics import RENTAL_CHANGES
from .paid import PRODUCER, mark_paid
from .unit_of_work import PaymentUnitOfWork

log = get_logger(__name__)
Via = Literal["webhook", "reconciler", "deadline", "customer"]


def billing_of(snapshot: OrderSnapshot) -> Billing:
    """What the order bought; orders from before rentals are a 30-day fixed term."""
    return snapshot.billing or Billing(
        kind="fixed_term", term_days=Billing.FIXED_TERM_DEFAULT_DAYS, period_id="once-30d"
    )


def new_rental(payment: PaymentRow) -> RentalRow:
    snapshot = OrderSnapshot.model_validate(payment.order_snapshot)
    billing = billing_of(snapshot)
    return RentalRow(
        order_id=payment.order_id,
        user_id=payment.user_id,
        kind=billing.kind,
        plan_id=snapshot.plan_id,
        period_id=billing.period_id,
        phase=RentalPhase.AWAITING_PAYMENT,
        limits={
            "limits": snapshot.server_spec.limits.model_dump(mode="json"),
            "feature_limits": snapshot.server_spec.feature_limits.model_dump(mode="json"),
        },
    )


async def rental_of(uow: PaymentUnitOfWork, payment: PaymentRow) -> RentalRow:
    """The order's rental, locked; made the first time anything is known about it."""
    rental = await uow.rentals.lock(payment.order_id)
    if rental is None:
        await uow.rentals.add(new_rental(payment))
        rental = await uow.rentals.lock(payment.order_id)
    if rental is None:  # just added, and rentals are never deleted
        raise RuntimeError(f"the rental of order {payment.order_id} was not stored")
    return rental


def state_of(rental: RentalRow) -> RentalState:
    return RentalState(
        phase=rental.phase,
        paid_through=rental.paid_through,
        renews_at=rental.renews_at,
        ends_at=rental.ends_at,
        next_payment_attempt=rental.next_payment_attempt,
        grace_until=rental.grace_until,
        terminate_at=rental.terminate_at,
        attempt_count=rental.attempt_count,
        hold=Hold(rental.hold) if rental.hold else None,
        invoice_id=rental.invoice_id,
    )


def schedule(rental: RentalRow, policy: RentalPolicy) -> None:
    """Set the rental's next deadline from its state (``domain.rental.next_deadline``); written with every
    change, so the deadline job finds it without any timer in memory."""
    due = next_deadline(
        state_of(rental),
        kind=rental.kind,
        warned=rental.warned_at is not None,
        terminated=rental.desired_state == DesiredServerState.TERMINATED.value,
        policy=policy,
    )
    rental.due_at, rental.due_kind = (due[0], due[1].value) if due else (None, None)
    rental.due_lease_until = None


def _write(rental: RentalRow, state: RentalState, now: datetime) -> None:
    rental.phase = state.phase
    rental.paid_through = state.paid_through
    rental.renews_at = state.renews_at
    rental.ends_at = state.ends_at
    rental.next_payment_attempt = state.next_payment_attempt
    rental.grace_until = state.grace_until
    rental.terminate_at = state.terminate_at
    rental.attempt_count = state.attempt_count
    rental.hold = state.hold.value if state.hold else None
    rental.invoice_id = state.invoice_id
    rental.updated_at = now


def record(
    uow: PaymentUnitOfWork,
    rental: RentalRow,
    payment: PaymentRow,
    assessment: Assessment,
    *,
    via: Via,
    now: datetime,
    policy: RentalPolicy,
    stripe_event_id: str | None = None,
    amount: int | None = None,
    currency: str | None = None,
    detail: dict[str, str] | None = None,
) -> str:
    """Write the assessment; when a customer would be told, record the steps and publish. Returns the
    outcome (the cause, or ``no_change``)."""
    before = rental.phase
    _write(rental, assessment.state, now)
    cause = assessment.cause  # the last step's: None when nothing a customer is told changed
    if cause is None:
        schedule(rental, policy)
        return "no_change"
    phase = before
    for step_cause, target in assessment.steps:
        rental.version += 1
        uow.rentals.record(
            RentalTransitionRow(
                order_id=rental.order_id,
                version=rental.version,
                from_phase=phase.value,
                to_phase=target.value,
                cause=step_cause.value,
                via=via,
                invoice_id=assessment.state.invoice_id,
                stripe_event_id=stripe_event_id,
                at=now,
            )
        )
        phase = target
    detail = {**(detail or {}), **({"via": via} if via != "webhook" else {})}
    uow.publish(
        RentalChanged(
            order_id=rental.order_id,
            correlation_id=payment.correlation_id,
            producer=PRODUCER,
            payload=RentalChangedPayload(
                version=rental.version,
                phase=rental.phase,
                cause=cause,
                kind="subscription" if rental.kind == "subscription" else "fixed_term",
                plan_id=rental.plan_id,
                period_id=rental.period_id,
                paid_through=rental.paid_through,
                renews_at=rental.renews_at,
                ends_at=rental.ends_at,
                next_payment_attempt=rental.next_payment_attempt,
                grace_until=rental.grace_until,
                terminate_at=rental.terminate_at,
                subscription_id=rental.subscription_id,
                invoice_id=rental.invoice_id,
                amount=amount,
                currency=currency,
                detail=detail,
            ),
        )
    )
    if cause == RentalCause.TERMINATION_WARNING:
        rental.warned_at = now
    publish_desired(uow, rental, payment, cause, now, build_changed=cause == RentalCause.PLAN_CHANGED)
    schedule(rental, policy)
    count_after_commit(uow, RENTAL_CHANGES.labels(cause.value, via).inc)
    log.info("rental changed", order_id=str(rental.order_id), phase=rental.phase.value, cause=cause.value, via=via)
    return cause.value


def publish_desired(
    uow: PaymentUnitOfWork,
    rental: RentalRow,
    payment: PaymentRow,
    cause: RentalCause,
    now: datetime,
    *,
    build_changed: bool = False,
) -> bool:
    """``DesiredServerStateChanged`` when what the server should be changed, its state or (a plan change)
    its build, at the rental's version (a rental with nothing else to tell gets a version of its own for
    it). True when one was published."""
    desired = desired_server_state(rental.phase, rental.terminate_at, now)
    if desired.value == rental.desired_state and not build_changed:
        return False
    if rental.desired_version >= rental.version:
        rental.version += 1
    rental.desired_state = desired.value
    rental.desired_version = rental.version
    uow.publish(
        DesiredServerStateChanged(
            order_id=rental.order_id,
            correlation_id=payment.correlation_id,
            producer=PRODUCER,
            payload=DesiredServerStateChangedPayload(
                version=rental.version,
                state=desired,
                reason=cause,
                plan_id=rental.plan_id,
                limits=Limits.model_validate(rental.limits["limits"]),
                feature_limits=FeatureLimits.model_validate(rental.limits["feature_limits"]),
            ),
        )
    )
    return True


async def sync_subscription(
    uow: PaymentUnitOfWork,
    subscription: Subscription,
    *,
    policy: RentalPolicy,
    via: Via,
    stripe_event_id: str | None = None,
    now: datetime | None = None,
) -> str:
    """Bring the order's rental to Stripe's current state (see the module docstring). Raises
    ``RetryLater`` when the subscription names no order of ours yet known here."""
    now = now or datetime.now(UTC)
    order_id = _order_id(subscription)
    payment = await uow.payments.lock(order_id)
    if payment is None:
        raise RetryLater(f"order {order_id} is not known to payment-service yet")
    rental = await rental_of(uow, payment)
    rental.subscription_id = subscription.facts.id
    rental.customer_id = subscription.customer or rental.customer_id
    rental.synced_at = now
    assessment = assess(state_of(rental), subscription.facts, policy, now)
    invoice = subscription.facts.latest_invoice
    if assessment.changed and any(step[1] == RentalPhase.ACTIVE for step in assessment.steps):
        await _first_payment(uow, payment, subscription)
    paid_now = invoice is not None and invoice.status == "paid" and assessment.cause is not None
    return record(
        uow,
        rental,
        payment,
        assessment,
        via=via,
        now=now,
        policy=policy,
        stripe_event_id=stripe_event_id,
        amount=invoice.amount_paid if paid_now and invoice else None,
        currency=invoice.currency if paid_now and invoice else None,
    )


async def _first_payment(uow: PaymentUnitOfWork, payment: PaymentRow, subscription: Subscription) -> None:
    """The subscription is paid for: the order is paid, once (whether the session or the invoice told us
    first). Money that does not match the order is left to the session's path, which refunds it."""
    if not PAYMENT.allows(payment.status, PaymentTrigger.PAID):
        return
    invoice = subscription.facts.latest_invoice
    if invoice is None or invoice.amount_paid != payment.amount or invoice.currency.lower() != payment.currency:
        log.warning("subscription active but its invoice does not match the order; waiting for the session")
        return
    sessions = [row for row in await uow.checkout_sessions.of_order(payment.order_id) if row.stripe_session_id]
    session_id = sessions[-1].stripe_session_id if sessions else None
    mark_paid(uow, payment, session_id=session_id or subscription.facts.id, payment_intent=None, via="webhook")


async def note_subscription(
    uow: PaymentUnitOfWork, payment: PaymentRow, subscription_id: str, customer_id: str | None
) -> None:
    """A completed subscription session names its subscription: remembered on the rental, so the
    reconciler reads it even if every subscription and invoice event is lost."""
    rental = await rental_of(uow, payment)
    if rental.subscription_id is None:
        rental.subscription_id = subscription_id
        rental.customer_id = customer_id or rental.customer_id


async def start_fixed_term(uow: PaymentUnitOfWork, payment: PaymentRow, *, policy: RentalPolicy) -> None:
    """A fixed-term order was paid (``service_layer.fulfilment``): its rental runs ``term_days``."""
    snapshot = OrderSnapshot.model_validate(payment.order_snapshot)
    billing = billing_of(snapshot)
    if billing.kind != "fixed_term":
        return
    now = datetime.now(UTC)
    rental = await rental_of(uow, payment)
    term = timedelta(days=billing.term_days or Billing.FIXED_TERM_DEFAULT_DAYS)
    assessment = fixed_term_paid(state_of(rental), term=term, paid_at=now, policy=policy)
    record(
        uow,
        rental,
        payment,
        assessment,
        via="webhook",
        now=now,
        policy=policy,
        amount=payment.amount,
        currency=payment.currency,
    )


def _order_id(subscription: Subscription) -> uuid.UUID:
    try:
        return uuid.UUID(str(subscription.order_ref))
    except ValueError as exc:
        raise RetryLater(f"subscription {subscription.facts.id} carries no order id") from exc
