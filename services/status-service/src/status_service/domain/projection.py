"""The customer-facing status as a pure function of the set of events an order has received.

``project(events)`` removes duplicates and decides the status from *which facts are present*, with a
fixed priority, instead of folding events in timestamp order. Presence does not depend on arrival order
or on any service's clock, so duplicates, any arrival order and clock skew between services give the
same answer, and rebuilding from the stored events reproduces the read model exactly. The canonical
order (``ordering.py``: causal first, clocks second) is consulted only where nothing but time can tell,
and only to refine the answer, never to undo a stronger fact.

The frontends switch on four statuses and we keep them unchanged; ``phase`` is the finer truth:

| phase              | status  | shown as                                          |
|--------------------|---------|---------------------------------------------------|
| awaiting_payment   | PENDING | Waiting for payment                               |
| payment_processing | PENDING | Waiting for payment (the bank has not confirmed)  |
| paid               | PAID    | Creating your server                              |
| provisioning       | PAID    | Creating your server (retrying, or after a replay)|
| installing         | PAID    | Creating your server (installing)                 |
| ready              | CREATED | Server ready, Connect                             |
| failed             | FAILED  | Server error                                      |
| payment_failed     | FAILED  | Payment failed                                    |
| expired            | FAILED  | Payment window expired                            |
| refunded           | FAILED  | Refunded                                          |

The rules, strongest first:

1. A refund of the order's payment makes it ``refunded``: the money went back, whatever else happened.
   A refund of a *duplicate* payment does not void an order that went ahead; it does turn an expired or
   failed payment into ``refunded`` (the customer's late money was returned).
2. ServerInstalled makes it ``ready`` (CREATED). Only the attempt that succeeds installs a server and
   nothing follows it, so no failure, late OrderPaid or expiry can undo it.
3. Any evidence of payment (OrderPaid, or any provisioning event, which only a payment can cause) makes
   it PAID, and an expiry or payment failure is then ignored. Within PAID:
   - ``failed`` when the current attempt failed: more ProvisionFailed events than operator replays
     (each replay starts one new attempt), or the newest failure comes after the newest replay;
   - otherwise ``installing`` when a server was created after the last failure (a replay of an order
     that is already installing starts nothing and changes nothing), ``provisioning`` while the current
     attempt retries or after a replay, else ``paid``. So FAILED becomes PAID again after a replay, and
     CREATED when the replayed attempt installs the server.
4. Without payment: ``payment_failed``, ``expired``, ``payment_processing``, else ``awaiting_payment``.

``updated_at`` is when the order entered its current phase: the (causally corrected) time of the fact
that put it there. It does not move when an event arrives that changes nothing a customer can see.
Customer messages never carry internal details (no panel errors, ids or reason codes).

The rental events (``RentalChanged``, ``DesiredServerStateChanged`` and the panel outcomes) never change
``status``, ``phase`` or ``message`` beyond one rule: a ``RentalChanged`` past ``awaiting_payment`` is
evidence of payment (rule 3), since payment-service commits it with the payment; frontends switch on
those. They decide the read model's ``rental``
(``rental.py``: the highest rental version wins, and what the panel last confirmed), which is null until
the first ``RentalChanged``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from spawnpoint_contracts import (
    Event,
    FailureReason,
    OrderCreated,
    OrderExpired,
    OrderPaid,
    OrderRefunded,
    PaymentFailed,
    PaymentProcessing,
    ProvisionFailed,
    ProvisioningReplayed,
    ProvisioningRetryScheduled,
    RentalChanged,
    RentalPhase,
    ServerCreated,
    ServerInstalled,
)

from .ordering import PROVISIONING_EVENTS, Placed, place
from .rental import RentalView, project_rental


class Status(StrEnum):
    """What the frontends switch on (unchanged from the original product)."""

    PENDING = "PENDING"
    PAID = "PAID"
    CREATED = "CREATED"
    FAILED = "FAILED"


class Phase(StrEnum):
    """The finer state within a status."""

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

PROGRESS: dict[Phase, int] = {
    Phase.AWAITING_PAYMENT: 0,
    Phase.PAYMENT_PROCESSING: 1,
    Phase.EXPIRED: 2,
    Phase.PAYMENT_FAILED: 2,
    Phase.PAID: 3,
    Phase.PROVISIONING: 4,
    Phase.INSTALLING: 5,
    Phase.FAILED: 6,
    Phase.READY: 7,
    Phase.REFUNDED: 8,
}
"""How far along each phase is. A new event never lowers it, with one deliberate exception: an operator's
replay moves ``failed`` back to ``provisioning`` (and then on to ``ready``)."""

MESSAGES: dict[Phase, str] = {
    Phase.AWAITING_PAYMENT: "Waiting for payment",
    Phase.PAYMENT_PROCESSING: "Waiting for your payment to clear",
    Phase.PAID: "Payment received. Creating your server",
    Phase.PROVISIONING: "Creating your server",
    Phase.INSTALLING: "Your server is being installed",
    Phase.READY: "Server ready",
    Phase.FAILED: "Server error: we could not create your server. Our team has been notified",
    Phase.PAYMENT_FAILED: "Your payment failed",
    Phase.EXPIRED: "The payment window expired",
    Phase.REFUNDED: "Your payment was refunded",
}

RETRYING_MESSAGE = "Creating your server (the host is busy, we keep trying)"
REPLAYED_MESSAGE = "Creating your server (our team fixed a problem and is trying again)"
FAILURE_MESSAGES: dict[FailureReason, str] = {
    FailureReason.NO_CAPACITY: "Server error: there is no room for your server right now. Our team has been notified",
    FailureReason.INSTALL_FAILED: "Server error: the installation of your server failed. Our team has been notified",
    FailureReason.INSTALL_TIMEOUT: "Server error: the installation of your server took too long. "
    "Our team has been notified",
}
REFUND_MESSAGES: dict[str, str] = {
    "provisioning_failed": "We could not create your server, so your payment was refunded",
    "paid_after_expiry": "Your payment arrived after the order had expired and was refunded",
}


@dataclass(frozen=True)
class ReadModel:
    """What a customer sees about one order, plus what an operator needs to know why."""

    order_id: uuid.UUID
    user_id: str | None
    phase: Phase
    message: str
    server_id: str | None
    updated_at: datetime
    decided_by: uuid.UUID
    last_event_id: uuid.UUID
    events_applied: int
    rental: RentalView | None = None

    @property
    def status(self) -> Status:
        return STATUS_OF[self.phase]

    @property
    def connect_path(self) -> str | None:
        return f"/gameserver/{self.server_id}" if self.phase == Phase.READY and self.server_id else None


def project(events: Iterable[Event]) -> ReadModel | None:
    """The read model of one order from the events it received (None when there are none)."""
    placed = place(events)
    if not placed:
        return None
    facts = _Facts(placed)
    phase, decided_by, message = _decide(facts)
    return ReadModel(
        order_id=placed[0].event.order_id,
        user_id=_user_id(facts),
        phase=phase,
        message=message or MESSAGES[phase],
        server_id=_server_id(facts),
        updated_at=decided_by.at,
        decided_by=decided_by.event.event_id,
        last_event_id=placed[-1].event.event_id,
        events_applied=len(placed),
        rental=project_rental([p.event for p in placed]),
    )


def voids_order(refund: OrderRefunded) -> bool:
    """A refund of the order's payment voids it; a refund of a duplicate payment does not."""
    return not refund.payload.reason.startswith("duplicate")


class _Facts:
    """The events of one order grouped by type, each group in canonical order."""

    def __init__(self, placed: list[Placed]) -> None:
        self.placed = placed
        self.position = {p.event.event_id: i for i, p in enumerate(placed)}
        self._by_type: dict[type[Event], list[Placed]] = {}
        for p in placed:
            self._by_type.setdefault(type(p.event), []).append(p)

    def all(self, kind: type[Event]) -> list[Placed]:
        return self._by_type.get(kind, [])

    def first(self, kind: type[Event]) -> Placed | None:
        found = self._by_type.get(kind)
        return found[0] if found else None

    def later(self, first: Placed | None, second: Placed | None) -> Placed | None:
        """The later of two events in canonical order (either may be missing)."""
        if first is None or second is None:
            return first or second
        return first if self.position[first.event.event_id] > self.position[second.event.event_id] else second

    def after(self, items: list[Placed], mark: Placed | None) -> list[Placed]:
        """The items that come after ``mark`` in canonical order (all of them when there is no mark)."""
        if mark is None:
            return items
        limit = self.position[mark.event.event_id]
        return [p for p in items if self.position[p.event.event_id] > limit]


Decision = tuple[Phase, Placed, str | None]


def _decide(facts: _Facts) -> Decision:
    refunds = facts.all(OrderRefunded)
    voiding = [r for r in refunds if isinstance(r.event, OrderRefunded) and voids_order(r.event)]
    if voiding:
        return Phase.REFUNDED, voiding[0], _refund_message(voiding[0])
    installed = facts.first(ServerInstalled)
    if installed is not None:
        return Phase.READY, installed, None
    paid = facts.first(OrderPaid)
    provisioning = [p for p in facts.placed if isinstance(p.event, PROVISIONING_EVENTS)]
    if paid is None and not provisioning:
        # A rental past awaiting_payment is committed with the payment that started it: evidence of
        # payment like the provisioning events, so a RentalChanged that overtakes OrderPaid never leaves a
        # paid order showing "Waiting for payment" beside an active rental.
        provisioning = [
            p
            for p in facts.placed
            if isinstance(p.event, RentalChanged) and p.event.payload.phase != RentalPhase.AWAITING_PAYMENT
        ][:1]
    if paid is not None or provisioning:
        return _paid(facts, paid, provisioning)
    for kind, phase in ((PaymentFailed, Phase.PAYMENT_FAILED), (OrderExpired, Phase.EXPIRED)):
        ended = facts.first(kind)
        if ended is not None:
            if refunds:
                return Phase.REFUNDED, refunds[0], _refund_message(refunds[0])
            return phase, ended, None
    processing = facts.first(PaymentProcessing)
    if processing is not None:
        return Phase.PAYMENT_PROCESSING, processing, None
    return Phase.AWAITING_PAYMENT, facts.first(OrderCreated) or facts.placed[0], None


def _paid(facts: _Facts, paid: Placed | None, provisioning: list[Placed]) -> Decision:
    failure = _current_failure(facts)
    if failure is not None:
        assert isinstance(failure.event, ProvisionFailed)
        return Phase.FAILED, failure, FAILURE_MESSAGES.get(failure.event.payload.reason)
    failures = facts.all(ProvisionFailed)
    latest_failure = failures[-1] if failures else None
    replays = facts.all(ProvisioningReplayed)
    latest_replay = replays[-1] if replays else None
    # A server created after the last failure is the current attempt's (a replay of an order that is
    # already installing, say a stale dead-letter copy, starts nothing new and changes nothing).
    created = facts.after(facts.all(ServerCreated), latest_failure)
    if created:
        return Phase.INSTALLING, created[0], None
    retries = facts.after(facts.all(ProvisioningRetryScheduled), facts.later(latest_failure, latest_replay))
    if retries:
        return Phase.PROVISIONING, retries[0], RETRYING_MESSAGE
    if latest_replay is not None:
        return Phase.PROVISIONING, latest_replay, REPLAYED_MESSAGE
    return Phase.PAID, paid or provisioning[0], None


def _current_failure(facts: _Facts) -> Placed | None:
    """The failure that ended the current attempt, if it did.

    Each operator replay starts one new attempt and each attempt fails at most once, so more failures
    than replays means the latest attempt failed, whatever the clocks say. Otherwise the canonical
    order decides: the newest failure must come after the newest replay (a replay of a message that
    was dead-lettered without a ProvisionFailed, for example after a crash loop, makes the counts
    equal although the new attempt failed)."""
    failures = facts.all(ProvisionFailed)
    if not failures:
        return None
    latest_failure = failures[-1]
    replays = facts.all(ProvisioningReplayed)
    if not replays:
        return latest_failure
    attempts_replayed = max(r.event.payload.replay_count for r in replays if isinstance(r.event, ProvisioningReplayed))
    if len(failures) > attempts_replayed:
        return latest_failure
    if facts.position[latest_failure.event.event_id] > facts.position[replays[-1].event.event_id]:
        return latest_failure
    return None


def _refund_message(refund: Placed) -> str:
    assert isinstance(refund.event, OrderRefunded)
    return REFUND_MESSAGES.get(refund.event.payload.reason, MESSAGES[Phase.REFUNDED])


def _user_id(facts: _Facts) -> str | None:
    for kind in (OrderCreated, OrderPaid):
        found = facts.first(kind)
        if found is not None and isinstance(found.event, OrderCreated | OrderPaid):
            return found.event.payload.order.user_id
    return None


def _server_id(facts: _Facts) -> str | None:
    """The panel's identifier of the order's server: the newest one announced."""
    identifier: str | None = None
    for p in facts.placed:
        if isinstance(p.event, ServerCreated | ServerInstalled) and p.event.payload.identifier:
            identifier = p.event.payload.identifier
    return identifier
