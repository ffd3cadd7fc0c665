"""The payment state machine of one order.

Stripe events arrive duplicated and in any order, and the return page and a sweeper may act on the same
session concurrently. So every move is forward-only, and message-driven callers ask ``PAYMENT.allows``
first: a move the table does not list is a guarded no-op, never a step back (a late ``expired`` does not
undo ``paid``). A move taken without asking (``PAYMENT.transition``) that the table does not allow raises
``InvalidTransition``.

```
pending_payment --completed&unpaid--> payment_processing --async_failed--> payment_failed
pending_payment | payment_processing --paid--> paid --refund--> refund_pending --> refunded
pending_payment --expired--> expired --(paid anyway)--> refund_pending --> refunded
payment_failed --(another session paid anyway)--> refund_pending --> refunded
```

``refund_pending`` is entered only when a refund is decided for good: a provisioning-failure refund that
is still being held (see ``domain.refunds``) leaves the payment ``paid``, because an operator's replay may
still create the server.
"""

from __future__ import annotations

from enum import StrEnum

from spawnpoint_kit.state_machine import StateMachine


class PaymentStatus(StrEnum):
    PENDING_PAYMENT = "pending_payment"
    PAYMENT_PROCESSING = "payment_processing"
    PAID = "paid"
    PAYMENT_FAILED = "payment_failed"
    EXPIRED = "expired"
    REFUND_PENDING = "refund_pending"
    REFUNDED = "refunded"


class PaymentTrigger(StrEnum):
    PROCESSING = "processing"
    PAID = "paid"
    FAILED = "failed"
    EXPIRED = "expired"
    REFUND_REQUESTED = "refund_requested"
    REFUNDED = "refunded"


TRANSITIONS: dict[tuple[PaymentStatus, PaymentTrigger], PaymentStatus] = {
    (PaymentStatus.PENDING_PAYMENT, PaymentTrigger.PROCESSING): PaymentStatus.PAYMENT_PROCESSING,
    (PaymentStatus.PENDING_PAYMENT, PaymentTrigger.PAID): PaymentStatus.PAID,
    (PaymentStatus.PAYMENT_PROCESSING, PaymentTrigger.PAID): PaymentStatus.PAID,
    (PaymentStatus.PENDING_PAYMENT, PaymentTrigger.FAILED): PaymentStatus.PAYMENT_FAILED,
    (PaymentStatus.PAYMENT_PROCESSING, PaymentTrigger.FAILED): PaymentStatus.PAYMENT_FAILED,
    (PaymentStatus.PENDING_PAYMENT, PaymentTrigger.EXPIRED): PaymentStatus.EXPIRED,
    (PaymentStatus.PENDING_PAYMENT, PaymentTrigger.REFUND_REQUESTED): PaymentStatus.REFUND_PENDING,
    (PaymentStatus.PAYMENT_PROCESSING, PaymentTrigger.REFUND_REQUESTED): PaymentStatus.REFUND_PENDING,
    (PaymentStatus.PAID, PaymentTrigger.REFUND_REQUESTED): PaymentStatus.REFUND_PENDING,
    (PaymentStatus.EXPIRED, PaymentTrigger.REFUND_REQUESTED): PaymentStatus.REFUND_PENDING,
    (PaymentStatus.PAYMENT_FAILED, PaymentTrigger.REFUND_REQUESTED): PaymentStatus.REFUND_PENDING,
    (PaymentStatus.REFUND_PENDING, PaymentTrigger.REFUNDED): PaymentStatus.REFUNDED,
}
"""Every allowed move; any pair not listed leaves the payment as it is."""

PAYMENT: StateMachine[PaymentStatus, PaymentTrigger] = StateMachine("payment", TRANSITIONS)
"""The payment's machine: every change of ``payments.status`` goes through it."""

OPEN_FOR_CHECKOUT = frozenset({PaymentStatus.PENDING_PAYMENT})
"""States in which a customer may (re)open a checkout for the order."""

AWAITING_PAYMENT = frozenset({PaymentStatus.PENDING_PAYMENT, PaymentStatus.PAYMENT_PROCESSING})
"""States in which Stripe still owes us a verdict: what the reconciliation sweeper looks at."""

UNPAID_FOR_GOOD = frozenset({PaymentStatus.EXPIRED, PaymentStatus.PAYMENT_FAILED})
"""Terminal states without money: a payment that still arrives for such an order is returned."""
