"""What a freshly retrieved Checkout Session means for an order: the pure rule behind fulfilment.

Every caller (a stored webhook event, the return page, the sweeper, a repeated checkout request)
retrieves the session from Stripe and ``service_layer.fulfilment`` asks ``decide``. The answer depends
only on the session's state as Stripe reports it now and on the payment's state here, never on which
event or caller triggered it, so duplicates, arrival order and concurrent callers cannot produce a second
``OrderPaid``:

- a session that is not ``complete`` fulfils nothing;
- amount or currency that differ from the order are never fulfilled (an operator looks at it);
- ``complete``/``paid``: the order becomes ``paid`` if the state machine allows it; the same session
  again is a no-op; money for an order that ended unpaid (expired, payment failed) is the order's only
  payment and is returned with ``OrderRefunded``; money from a second session of an order that already
  holds a payment is a duplicate and is returned on its own, without touching the order;
- ``complete``/``unpaid``: a delayed payment method; the order waits in ``payment_processing``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .payment import PAYMENT, UNPAID_FOR_GOOD, PaymentStatus, PaymentTrigger


class Decision(StrEnum):
    NOT_COMPLETE = "not_complete"
    MISMATCH = "mismatch"
    FULFIL = "fulfilled"
    ALREADY_PAID = "already_paid"
    PROCESSING = "processing"
    NO_CHANGE = "no_change"
    REFUND_ORDER = "paid_after_close"
    REFUND_DUPLICATE = "duplicate_payment"
    REFUND_MISMATCH = "refund_mismatch"


@dataclass(frozen=True)
class SessionFacts:
    """The parts of a retrieved Checkout Session that matter here."""

    session_id: str
    status: str | None
    payment_status: str | None
    amount_total: int | None
    currency: str | None


@dataclass(frozen=True)
class PaymentFacts:
    """The payment as this service holds it."""

    status: PaymentStatus
    amount: int
    currency: str
    paid_session_id: str | None


def money_matches(payment: PaymentFacts, session: SessionFacts) -> bool:
    """The session charges exactly what the order costs, in the order's currency."""
    return session.amount_total == payment.amount and (session.currency or "").lower() == payment.currency.lower()


def is_paid(payment: PaymentFacts, session: SessionFacts) -> bool:
    """Stripe holds the money (``no_payment_required`` counts only for a free order)."""
    if session.payment_status == "paid":
        return True
    return session.payment_status == "no_payment_required" and payment.amount == 0


def _mismatch(payment: PaymentFacts, session: SessionFacts) -> Decision:
    """A session that charged a different amount or currency: money Stripe holds is never kept. It is the
    order's only payment (refunded, and the order ends), or a second one (refunded alone); a session that
    took no money changes nothing and is only reported."""
    if session.payment_status != "paid":
        return Decision.MISMATCH
    if payment.paid_session_id == session.session_id:
        return Decision.ALREADY_PAID  # this very session's money is being returned already
    if payment.paid_session_id is not None or not PAYMENT.allows(payment.status, PaymentTrigger.REFUND_REQUESTED):
        return Decision.REFUND_DUPLICATE
    if payment.status in UNPAID_FOR_GOOD:
        return Decision.REFUND_ORDER
    return Decision.REFUND_MISMATCH


def decide(payment: PaymentFacts, session: SessionFacts) -> Decision:
    """What to do with ``session`` for the order whose payment is ``payment``."""
    if session.status != "complete":
        return Decision.NOT_COMPLETE
    if not money_matches(payment, session):
        return _mismatch(payment, session)
    if is_paid(payment, session):
        if payment.paid_session_id == session.session_id:
            return Decision.ALREADY_PAID
        if PAYMENT.allows(payment.status, PaymentTrigger.PAID):
            return Decision.FULFIL
        if payment.paid_session_id is None and payment.status in UNPAID_FOR_GOOD:
            return Decision.REFUND_ORDER
        return Decision.REFUND_DUPLICATE
    if session.payment_status == "no_payment_required":
        return Decision.MISMATCH
    if PAYMENT.allows(payment.status, PaymentTrigger.PROCESSING):
        return Decision.PROCESSING
    return Decision.NO_CHANGE
