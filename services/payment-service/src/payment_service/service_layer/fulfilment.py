"""One idempotent fulfilment per order, whoever asks: a stored webhook event, the return page, the sweeper.

Callers retrieve the Checkout Session from Stripe first (never trusting an event snapshot for the current
state) and hand it, with an open unit of work, to one of the handlers here:

- ``Fulfilment.fulfil`` decides with the pure rule of ``domain.fulfilment`` under the payment's row lock:
  ``OrderPaid`` when the order becomes paid, ``PaymentProcessing`` for a delayed method, a refund row for
  money that must go back;
- ``fail``: a delayed payment failed for good (``PaymentFailed``);
- ``expire``: the session expired, so the order expires unless it was paid or has another live session;
- ``expire_if_nothing_live``: the sweeper's, for an order none of whose attempts can take money any more.

Each handler changes rows through the unit of work's repositories and the ``PAYMENT`` state machine and
publishes through it, so the effects, the events (and, for a stored event, the event's ``processed`` mark,
see ``service_layer.stored_events``) commit together. The state machine makes every later call a no-op, so
however many events, retries, return-page loads and concurrent callers arrive, there is at most one
``OrderPaid`` per order. None of them sees a Stripe event id: the stored event's bookkeeping is the
runner's.

After an order is paid, its other sessions that are still open are expired so the customer cannot pay
twice. That is a Stripe call, made after the commit (``uow.after_commit``); if Stripe answers that one was
completed meanwhile, it is fulfilled too (and so refunded as a duplicate). ``Fulfilment.apply`` runs
``fulfil`` in a unit of work of its own, for the callers that are not a stored event.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from spawnpoint_contracts import (
    OrderExpired,
    OrderExpiredPayload,
    PaymentFailed,
    PaymentFailedPayload,
    PaymentProcessing,
    PaymentProcessingPayload,
)
from spawnpoint_kit.logs import get_logger

from ..adapters.stripe_gateway import CheckoutGateway, CheckoutSession, not_open_status
from ..adapters.tables import PaymentRow
from ..domain.checkout import SessionRowStatus, attempt_is_live, mirrored_status
from ..domain.fulfilment import Decision, PaymentFacts, decide
from ..domain.payment import PAYMENT, PaymentStatus, PaymentTrigger
from ..domain.refunds import RefundKind, RefundReason, duplicate_refund_key, order_refund_key, reason_for_closed_order
from ..domain.rental import RentalPolicy
from ..domain.stripe_events import RetryLater
from ..metrics import FULFILMENTS
from . import refunds
from .paid import PRODUCER, Channel, mark_paid
from .rentals import note_subscription, start_fixed_term
from .unit_of_work import PaymentUnitOfWork

log = get_logger(__name__)


@dataclass(frozen=True)
class FulfilmentResult:
    order_id: uuid.UUID
    outcome: str
    status: PaymentStatus


class PaymentMismatch(Exception):
    """The session carries no usable order id."""


def order_id_of(checkout: CheckoutSession) -> uuid.UUID:
    try:
        return uuid.UUID(str(checkout.order_ref))
    except ValueError as exc:
        raise PaymentMismatch(f"session {checkout.id} carries no order id") from exc


async def _known_payment(uow: PaymentUnitOfWork, order_id: uuid.UUID) -> PaymentRow:
    """The order's payment, locked; ``RetryLater`` when the order is not known here yet (its first checkout
    request has not reached this service: the event is kept and retried)."""
    payment = await uow.payments.lock(order_id)
    if payment is None:
        raise RetryLater(f"order {order_id} is not known to payment-service yet")
    return payment


async def _mirror_session(uow: PaymentUnitOfWork, checkout: CheckoutSession) -> None:
    """Keep our copy of the session's status in step with what Stripe just said."""
    known = await uow.checkout_sessions.status_by_stripe_id(checkout.id)
    if known is not None and (status := mirrored_status(known[1], checkout.status)) is not None:
        await uow.checkout_sessions.set_status(known[0], status)


def _facts(payment: PaymentRow) -> PaymentFacts:
    return PaymentFacts(
        status=payment.status,
        amount=payment.amount,
        currency=payment.currency,
        paid_session_id=payment.paid_session_id,
    )


class Fulfilment:
    """The fulfil handler and what it needs besides the unit of work: Stripe, to close the order's other
    sessions after the commit, and a way to open a new unit of work for that."""

    def __init__(
        self,
        gateway: CheckoutGateway,
        unit_of_work: Callable[[], PaymentUnitOfWork],
        *,
        rental_policy: RentalPolicy | None = None,
    ) -> None:
        self._gateway = gateway
        self._unit_of_work = unit_of_work
        self._rental_policy = rental_policy or RentalPolicy()

    async def retrieve(self, session_id: str) -> CheckoutSession:
        return await self._gateway.retrieve_checkout_session(session_id)

    async def fulfil(self, checkout: CheckoutSession, uow: PaymentUnitOfWork, *, via: Channel) -> str:
        """Apply a freshly retrieved session (of any status) in the open unit of work; returns the outcome
        (``domain.fulfilment.Decision``). Raises ``RetryLater`` when the order is not known here yet."""
        return (await self._fulfil(checkout, uow, via=via)).outcome

    async def apply(self, checkout: CheckoutSession, *, via: Channel) -> FulfilmentResult:
        """``fulfil`` in a unit of work of its own (the return page, the sweeper, a repeated checkout)."""
        uow = self._unit_of_work()
        async with uow:
            result = await self._fulfil(checkout, uow, via=via)
            await uow.commit()
        return result

    async def _fulfil(self, checkout: CheckoutSession, uow: PaymentUnitOfWork, *, via: Channel) -> FulfilmentResult:
        order_id = order_id_of(checkout)
        payment = await _known_payment(uow, order_id)
        await _mirror_session(uow, checkout)
        decision = decide(_facts(payment), checkout.facts)
        if decision == Decision.FULFIL:
            _paid(uow, payment, checkout, via)
            await start_fixed_term(uow, payment, policy=self._rental_policy)
        if checkout.subscription is not None and checkout.status == "complete":
            await note_subscription(uow, payment, checkout.subscription, checkout.customer)
        elif decision == Decision.PROCESSING:
            _processing(uow, payment, checkout)
        elif decision == Decision.REFUND_ORDER:
            await _refund_closed_order(uow, payment, checkout)
        elif decision == Decision.REFUND_MISMATCH:
            await _refund_mismatch(uow, payment, checkout)
        elif decision == Decision.REFUND_DUPLICATE:
            await _refund_duplicate(uow, payment, checkout)
        elif decision == Decision.MISMATCH:
            _log_mismatch("took no money; not fulfilling", payment, checkout)
        others = (
            [i for i in await uow.checkout_sessions.open_stripe_ids(order_id) if i != checkout.id]
            if decision in (Decision.FULFIL, Decision.REFUND_MISMATCH)
            else []
        )

        async def after_commit() -> None:
            FULFILMENTS.labels(via, decision.value).inc()
            if decision == Decision.FULFIL:
                log.info("order paid", order_id=str(order_id), session_id=checkout.id, via=via)
            await self._close(others, via=via)

        uow.after_commit(after_commit)
        return FulfilmentResult(order_id, decision.value, payment.status)

    async def _close(self, session_ids: list[str], *, via: Channel) -> None:
        """Best effort: a failure is logged; the sweeper and Stripe's own expiry close them later. A
        session Stripe reports completed meanwhile is fulfilled (and so refunded as a duplicate)."""
        for session_id in session_ids:
            try:
                await self._mirror(await self._gateway.expire_checkout_session(session_id))
            except Exception as exc:
                if not_open_status(exc) is None:
                    log.warning("could not expire another open session of a paid order", session_id=session_id)
                    continue
                checkout = await self.retrieve(session_id)
                if checkout.status == "complete":
                    await self.apply(checkout, via=via)
                else:
                    await self._mirror(checkout)

    async def _mirror(self, checkout: CheckoutSession) -> None:
        uow = self._unit_of_work()
        async with uow:
            await _mirror_session(uow, checkout)
            await uow.commit()


def _paid(uow: PaymentUnitOfWork, payment: PaymentRow, checkout: CheckoutSession, via: Channel) -> None:
    mark_paid(uow, payment, session_id=checkout.id, payment_intent=checkout.payment_intent, via=via)


def _processing(uow: PaymentUnitOfWork, payment: PaymentRow, checkout: CheckoutSession) -> None:
    PAYMENT.transition(payment, PaymentTrigger.PROCESSING)
    uow.publish(
        PaymentProcessing(
            order_id=payment.order_id,
            correlation_id=payment.correlation_id,
            producer=PRODUCER,
            payload=PaymentProcessingPayload(session_id=checkout.id),
        )
    )


async def _refund_closed_order(uow: PaymentUnitOfWork, payment: PaymentRow, checkout: CheckoutSession) -> None:
    """Money arrived for an order that had already ended unpaid: it is the order's only payment, and it goes
    back (``OrderRefunded`` follows when Stripe confirms)."""
    reason = reason_for_closed_order(payment.status)
    now = datetime.now(UTC)
    PAYMENT.transition(payment, PaymentTrigger.REFUND_REQUESTED, at=now)
    payment.paid_session_id = checkout.id
    payment.payment_intent = checkout.payment_intent
    log.warning("payment arrived for an order that had ended unpaid; refunding", reason=reason.value)
    await refunds.schedule(
        uow,
        refunds.RefundRequest(
            order_id=payment.order_id,
            key=order_refund_key(payment.order_id),
            kind=RefundKind.ORDER,
            reason=reason,
            session_id=checkout.id,
            payment_intent=checkout.payment_intent,
            amount=checkout.amount_total or payment.amount,
            currency=(checkout.currency or payment.currency).lower(),
            due_at=now,
        ),
    )


def _log_mismatch(what: str, payment: PaymentRow, checkout: CheckoutSession) -> None:
    log.error(
        f"session amount or currency does not match the order; {what}",
        session_id=checkout.id,
        session_amount=checkout.amount_total,
        order_amount=payment.amount,
        session_currency=checkout.currency,
        order_currency=payment.currency,
    )


async def _refund_mismatch(uow: PaymentUnitOfWork, payment: PaymentRow, checkout: CheckoutSession) -> None:
    """The order's first money came from a session that charged another amount or currency: it is never
    kept. It goes back (``OrderRefunded`` with reason ``amount_mismatch`` follows when Stripe confirms) and the
    order ends; the customer orders again. Logged as an error: a tampered or misconfigured checkout."""
    now = datetime.now(UTC)
    PAYMENT.transition(payment, PaymentTrigger.REFUND_REQUESTED, at=now)
    payment.paid_session_id = checkout.id
    payment.payment_intent = checkout.payment_intent
    _log_mismatch("refunding it and ending the order", payment, checkout)
    await refunds.schedule(
        uow,
        refunds.RefundRequest(
            order_id=payment.order_id,
            key=order_refund_key(payment.order_id),
            kind=RefundKind.ORDER,
            reason=RefundReason.AMOUNT_MISMATCH,
            session_id=checkout.id,
            payment_intent=checkout.payment_intent,
            amount=checkout.amount_total or 0,
            currency=(checkout.currency or payment.currency).lower(),
            due_at=now,
        ),
    )


async def _refund_duplicate(uow: PaymentUnitOfWork, payment: PaymentRow, checkout: CheckoutSession) -> None:
    """A second session of an order that already holds a payment was paid too: return that money."""
    if not checkout.payment_intent:
        log.error("duplicate payment without a PaymentIntent; cannot refund", session_id=checkout.id)
        return
    log.warning("a second payment arrived for the order; refunding it", session_id=checkout.id)
    await refunds.schedule(
        uow,
        refunds.RefundRequest(
            order_id=payment.order_id,
            key=duplicate_refund_key(payment.order_id, checkout.payment_intent),
            kind=RefundKind.DUPLICATE,
            reason=RefundReason.DUPLICATE_PAYMENT,
            session_id=checkout.id,
            payment_intent=checkout.payment_intent,
            amount=checkout.amount_total or payment.amount,
            currency=(checkout.currency or payment.currency).lower(),
            due_at=datetime.now(UTC),
        ),
    )


async def fail(checkout: CheckoutSession, uow: PaymentUnitOfWork) -> str:
    """A delayed payment failed for good: PaymentFailed once, nothing provisioned, nothing refunded.
    Raises ``RetryLater`` when the order is not known here yet."""
    order_id = order_id_of(checkout)
    payment = await _known_payment(uow, order_id)
    await _mirror_session(uow, checkout)
    if not PAYMENT.allows(payment.status, PaymentTrigger.FAILED) or payment.paid_session_id is not None:
        return "no_change"
    PAYMENT.transition(payment, PaymentTrigger.FAILED)
    uow.publish(
        PaymentFailed(
            order_id=order_id,
            correlation_id=payment.correlation_id,
            producer=PRODUCER,
            payload=PaymentFailedPayload(session_id=checkout.id, reason="async_payment_failed"),
        )
    )
    return "payment_failed"


async def expire(checkout: CheckoutSession, uow: PaymentUnitOfWork) -> str:
    """The session expired: the order expires too, unless it was paid meanwhile or another of its sessions
    is still live (the customer was handed a replacement). Raises ``RetryLater`` for an unknown order."""
    order_id = order_id_of(checkout)
    payment = await _known_payment(uow, order_id)
    await _mirror_session(uow, checkout)
    now = datetime.now(UTC)
    live_sibling = any(
        attempt_is_live(row.status, row.expires_at, now)
        for row in await uow.checkout_sessions.of_order(order_id)
        if row.stripe_session_id != checkout.id
    )
    if payment.paid_session_id is not None or live_sibling:
        return "no_change"
    if not PAYMENT.allows(payment.status, PaymentTrigger.EXPIRED):
        return "no_change"
    _expire(uow, payment, checkout.id)
    return "expired"


async def expire_if_nothing_live(order_id: uuid.UUID, uow: PaymentUnitOfWork, *, now: datetime) -> str:
    """Expire an order still waiting for payment when none of its sessions can take money any more: Stripe
    expired the ones it has, and attempts that never reached the customer are past their window (so no
    expiry event will ever come for them). The sweeper's."""
    payment = await uow.payments.lock(order_id)
    if payment is None or not PAYMENT.allows(payment.status, PaymentTrigger.EXPIRED):
        return "no_change"
    rows = await uow.checkout_sessions.of_order(order_id)
    if not rows or any(
        attempt_is_live(row.status, row.expires_at, now) or row.status == SessionRowStatus.COMPLETE for row in rows
    ):
        return "no_change"
    for row in rows:
        if row.status == SessionRowStatus.CREATING:
            row.status = SessionRowStatus.ABANDONED
    _expire(uow, payment, max(rows, key=lambda r: r.attempt).stripe_session_id)
    return "expired"


def _expire(uow: PaymentUnitOfWork, payment: PaymentRow, session_id: str | None) -> None:
    PAYMENT.transition(payment, PaymentTrigger.EXPIRED)
    uow.publish(
        OrderExpired(
            order_id=payment.order_id,
            correlation_id=payment.correlation_id,
            producer=PRODUCER,
            payload=OrderExpiredPayload(session_id=session_id, reason="checkout_session_expired"),
        )
    )
