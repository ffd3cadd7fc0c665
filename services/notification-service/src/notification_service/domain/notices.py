"""Which events make which e-mails, to whom, with which facts: a pure function of the event.

``notices_for(event, order_placed=...)`` returns the notices an event calls for (none for most). Each
carries a ``kind`` (the template), the recipient's role and the facts the template may show: only what is
listed here reaches a template, so nothing an event carries by accident (a secret setting's value, a
token) can end up in an e-mail. Amounts stay in minor units with their currency and dates stay aware
datetimes (ISO strings in the stored context); the templates format them in the customer's locale and
time zone.

Optional kinds (``OPTIONAL``) are sent only while the customer's preference allows them; payment,
suspension and deletion notices are required by the contract and are always sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from spawnpoint_contracts import (
    Event,
    OrderCreated,
    OrderRefunded,
    ProvisionFailed,
    RentalCause,
    RentalChanged,
    ServerInstalled,
    ServerSuspended,
    ServerTerminated,
    ServerUnsuspended,
)


class Kind(StrEnum):
    ORDER_PLACED = "order_placed"
    SERVER_READY = "server_ready"
    PROVISIONING_FAILED = "provisioning_failed"
    REFUND_MADE = "refund_made"
    PAYMENT_FAILED = "payment_failed"
    PAYMENT_ACTION_REQUIRED = "payment_action_required"
    PAYMENT_RECOVERED = "payment_recovered"
    RENTAL_LAPSED = "rental_lapsed"
    SERVER_SUSPENDED = "server_suspended"
    SERVER_UNSUSPENDED = "server_unsuspended"
    CANCELLATION_CONFIRMED = "cancellation_confirmed"
    TERMINATION_WARNING = "termination_warning"
    SERVER_TERMINATED = "server_terminated"
    DISPUTE_OPENED = "dispute_opened"


class Role(StrEnum):
    CUSTOMER = "customer"
    OPERATOR = "operator"


OPTIONAL: frozenset[Kind] = frozenset({Kind.ORDER_PLACED, Kind.PAYMENT_RECOVERED})
"""What a customer may turn off. Everything else is a notice the contract requires (payment, suspension,
deletion, refunds) or the thing they bought (the server is ready)."""


@dataclass(frozen=True)
class Notice:
    kind: Kind
    role: Role
    facts: dict[str, Any] = field(default_factory=dict)
    """JSON-safe facts for the template (datetimes as ISO strings)."""


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


_RENTAL_KINDS: dict[RentalCause, Kind] = {
    RentalCause.PAYMENT_FAILED: Kind.PAYMENT_FAILED,
    RentalCause.PAYMENT_ACTION_REQUIRED: Kind.PAYMENT_ACTION_REQUIRED,
    RentalCause.RECOVERED: Kind.PAYMENT_RECOVERED,
    RentalCause.LAPSED: Kind.RENTAL_LAPSED,
    RentalCause.CANCELLATION_SCHEDULED: Kind.CANCELLATION_CONFIRMED,
    RentalCause.TERMINATION_WARNING: Kind.TERMINATION_WARNING,
}
"""Rental causes the customer is e-mailed about. A refund is told by ``OrderRefunded`` (with its amount),
a suspension and a deletion by the panel's confirmation (``ServerSuspended``, ``ServerTerminated``), so
that the e-mail says what did happen, not what was decided."""


def notices_for(event: Event, *, order_placed: bool = False) -> list[Notice]:
    """The e-mails ``event`` calls for (``order_placed``: the configuration's NOTIFY_ORDER_PLACED)."""
    if isinstance(event, OrderCreated):
        if not order_placed:
            return []
        order = event.payload.order
        return [Notice(Kind.ORDER_PLACED, Role.CUSTOMER, {"amount": order.amount, "currency": order.currency})]
    if isinstance(event, ServerInstalled):
        return [
            Notice(
                Kind.SERVER_READY,
                Role.CUSTOMER,
                {"server_id": event.payload.server_id, "identifier": event.payload.identifier},
            )
        ]
    if isinstance(event, ProvisionFailed):
        return [Notice(Kind.PROVISIONING_FAILED, Role.CUSTOMER, {"reason": event.payload.reason.value})]
    if isinstance(event, OrderRefunded):
        refund = event.payload
        return [
            Notice(
                Kind.REFUND_MADE,
                Role.CUSTOMER,
                {"amount": refund.amount, "currency": refund.currency, "reason": refund.reason},
            )
        ]
    if isinstance(event, RentalChanged):
        return _rental_notices(event)
    if isinstance(event, ServerSuspended):
        return [Notice(Kind.SERVER_SUSPENDED, Role.CUSTOMER, {"reason": event.payload.reason})]
    if isinstance(event, ServerUnsuspended):
        return [Notice(Kind.SERVER_UNSUSPENDED, Role.CUSTOMER, {})]
    if isinstance(event, ServerTerminated):
        return [Notice(Kind.SERVER_TERMINATED, Role.CUSTOMER, {})]
    return []


def _rental_notices(event: RentalChanged) -> list[Notice]:
    rental = event.payload
    facts: dict[str, Any] = {
        "phase": rental.phase.value,
        "paid_through": _iso(rental.paid_through),
        "next_payment_attempt": _iso(rental.next_payment_attempt),
        "grace_until": _iso(rental.grace_until),
        "ends_at": _iso(rental.ends_at),
        "terminate_at": _iso(rental.terminate_at),
        "amount": rental.amount,
        "currency": rental.currency,
        "version": rental.version,
    }
    if rental.cause == RentalCause.DISPUTE_OPENED:
        return [Notice(Kind.DISPUTE_OPENED, Role.OPERATOR, {**facts, "dispute": rental.detail.get("dispute_id")})]
    kind = _RENTAL_KINDS.get(rental.cause)
    return [Notice(kind, Role.CUSTOMER, facts)] if kind is not None else []
