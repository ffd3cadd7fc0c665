"""The customer-facing status as a pure function of the set of events an order has received.

``project(events)`` sorts the events canonically (by ``occurred_at``, then ``event_id``), drops
duplicates, and folds them through forward-only rules. Because the input is a set and the order is
canonical, duplicates and any arrival order give the same answer, and rebuilding from stored events
reproduces the read model exactly.

The frontends switch on four statuses and we keep them unchanged; ``phase`` is the finer truth:

| phase              | status  | shown as                          |
|--------------------|---------|-----------------------------------|
| awaiting_payment   | PENDING | Waiting for payment               |
| payment_processing | PENDING | Waiting for payment (bank delay)  |
| paid               | PAID    | Creating your server              |
| provisioning       | PAID    | Creating your server (retrying)   |
| installing         | PAID    | Creating your server (installing) |
| ready              | CREATED | Server ready, Connect             |
| failed             | FAILED  | Server error                      |
| payment_failed     | FAILED  | Payment failed                    |
| expired            | FAILED  | Payment window expired            |
| refunded           | FAILED  | Refunded                          |

CREATED appears only after ServerInstalled: a server that exists but is installing is PAID/installing.
Rules: commercial progress only moves forward (a late OrderPaid never undoes CREATED; an expiry or a
payment failure after payment is ignored); a failure does not override a ready server; an operator's
replay moves FAILED back to provisioning, so a replay that succeeds ends CREATED.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from spawnpoint_contracts import (
    Event,
    OrderCreated,
    OrderExpired,
    OrderPaid,
    OrderRefunded,
    PaymentFailed,
    PaymentProcessing,
    ProvisionFailed,
    ProvisioningReplayed,
    ProvisioningRetryScheduled,
    ServerCreated,
    ServerInstalled,
)


class Status(StrEnum):
    PENDING = "PENDING"
    PAID = "PAID"
    CREATED = "CREATED"
    FAILED = "FAILED"


class Phase(StrEnum):
    AWAITING_PAYMENT = "awaiting_payment"
    PAYMENT_PROCESSING = "payment_processing"
    PAID = "paid"
    PROVISIONING = "provisioning"
    INSTALLING = "installing"
    READY = "ready"
    FAILED = "failed"
    PAYMENT_FAILED = "payment_failed"
    EXPIRED = "expired"
    REFUNDED = "refunded"


STATUS_OF: dict[Phase, Status] = {
    Phase.AWAITING_PAYMENT: Status.PENDING,
    Phase.PAYMENT_PROCESSING: Status.PENDING,
    Phase.PAID: Status.PAID,
    Phase.PROVISIONING: Status.PAID,
    Phase.INSTALLING: Status.PAID,
    Phase.READY: Status.CREATED,
    Phase.FAILED: Status.FAILED,
    Phase.PAYMENT_FAILED: Status.FAILED,
    Phase.EXPIRED: Status.FAILED,
    Phase.REFUNDED: Status.FAILED,
}

MESSAGES: dict[Phase, str] = {
    Phase.AWAITING_PAYMENT: "Waiting for payment",
    Phase.PAYMENT_PROCESSING: "Waiting for your payment to clear",
    Phase.PAID: "Payment received. Creating your server",
    Phase.PROVISIONING: "Creating your server",
    Phase.INSTALLING: "Your server is being installed",
    Phase.READY: "Server ready",
    Phase.FAILED: "Server error: we could not create your server",
    Phase.PAYMENT_FAILED: "Your payment failed",
    Phase.EXPIRED: "The payment window expired",
    Phase.REFUNDED: "Your payment was refunded",
}

_COMMERCIAL_RANK = {Phase.AWAITING_PAYMENT: 0, Phase.PAYMENT_PROCESSING: 1}
_UNPAID_TERMINAL = frozenset({Phase.EXPIRED, Phase.PAYMENT_FAILED})


@dataclass(frozen=True)
class ReadModel:
    order_id: uuid.UUID
    user_id: str | None
    phase: Phase
    message: str
    server_id: str | None
    updated_at: datetime
    last_event_id: uuid.UUID
    events_applied: int
    paid: bool = False

    @property
    def status(self) -> Status:
        return STATUS_OF[self.phase]

    @property
    def connect_path(self) -> str | None:
        return f"/gameserver/{self.server_id}" if self.phase == Phase.READY and self.server_id else None


def canonical(events: Iterable[Event]) -> list[Event]:
    """Unique by event id, in canonical order."""
    unique = {e.event_id: e for e in events}
    return sorted(unique.values(), key=lambda e: (e.occurred_at, str(e.event_id)))


def project(events: Iterable[Event]) -> ReadModel | None:
    """The read model of one order from the events it received (None when there are none)."""
    model: ReadModel | None = None
    for event in canonical(events):
        model = _apply(model, event)
    return model


def _start(event: Event) -> ReadModel:
    return ReadModel(
        order_id=event.order_id,
        user_id=None,
        phase=Phase.AWAITING_PAYMENT,
        message=MESSAGES[Phase.AWAITING_PAYMENT],
        server_id=None,
        updated_at=event.occurred_at,
        last_event_id=event.event_id,
        events_applied=0,
    )


def _to(model: ReadModel, phase: Phase, message: str | None = None) -> ReadModel:
    return replace(model, phase=phase, message=message or MESSAGES[phase])


def _apply(model: ReadModel | None, event: Event) -> ReadModel:
    current = model or _start(event)
    current = replace(
        current, updated_at=event.occurred_at, last_event_id=event.event_id, events_applied=current.events_applied + 1
    )
    phase = current.phase
    if isinstance(event, OrderCreated | OrderPaid) and current.user_id is None:
        current = replace(current, user_id=_user_of(event))
    if isinstance(event, PaymentProcessing):
        if phase == Phase.AWAITING_PAYMENT:
            return _to(current, Phase.PAYMENT_PROCESSING)
    elif isinstance(event, OrderPaid):
        current = replace(current, paid=True)
        if phase in _COMMERCIAL_RANK or phase in _UNPAID_TERMINAL:
            return _to(current, Phase.PAID)
    elif isinstance(event, OrderExpired | PaymentFailed):
        if not current.paid and phase in _COMMERCIAL_RANK:
            return _to(current, Phase.EXPIRED if isinstance(event, OrderExpired) else Phase.PAYMENT_FAILED)
    elif isinstance(event, ProvisioningRetryScheduled):
        if phase == Phase.PAID:
            return _to(current, Phase.PROVISIONING, "Creating your server (the panel is busy; retrying)")
    elif isinstance(event, ServerCreated):
        current = replace(current, server_id=event.payload.identifier)
        if phase in (Phase.PAID, Phase.PROVISIONING) or phase in _COMMERCIAL_RANK:
            return _to(current, Phase.INSTALLING)
    elif isinstance(event, ServerInstalled):
        current = replace(current, server_id=event.payload.identifier or current.server_id)
        if phase != Phase.REFUNDED:
            return _to(current, Phase.READY)
    elif isinstance(event, ProvisionFailed):
        if phase not in (Phase.READY, Phase.REFUNDED):
            return _to(current, Phase.FAILED, f"Server error: {event.payload.message}")
    elif isinstance(event, ProvisioningReplayed):
        if phase == Phase.FAILED:
            return _to(current, Phase.PROVISIONING, "Creating your server (retrying after a fix)")
    elif isinstance(event, OrderRefunded):
        if phase != Phase.READY:
            return _to(current, Phase.REFUNDED)
    return current


def _user_of(event: OrderCreated | OrderPaid) -> str:
    return event.payload.order.user_id
