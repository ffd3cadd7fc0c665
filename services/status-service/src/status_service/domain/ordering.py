"""The canonical order of an order's events: causal first, clocks second.

Events come from four services whose clocks disagree by milliseconds (NTP) or, on a bad day, by
seconds. Sorting by ``occurred_at`` alone would then put a server's creation before the payment that
caused it, or a replay before the failure it repairs. So the canonical order respects every
*happens-before* relation we know for certain, and uses the clock only between events that are not
so related:

1. ``causation_id``: an event comes after the event that caused it (when that event is in the set);
2. OrderCreated comes before every other fact about the order;
3. PaymentProcessing comes before OrderPaid and PaymentFailed (a delayed payment settles after it
   started);
4. OrderPaid comes before every provisioning event and every refund (nothing is provisioned or
   refunded before a payment);
5. ServerInstalled comes after every other provisioning event (the attempt that succeeds is the last
   one; nothing follows it);
6. a RentalChanged comes after every RentalChanged of a lower version (payment-service bumps the version
   under the rental's row lock), and a DesiredServerStateChanged of version v after the RentalChanged
   events up to v (published in the same transaction, after them) and the desired states before it;
7. a panel outcome (ServerSuspended, ServerUnsuspended, ServerResized, ServerTerminated,
   ServerActionFailed) for ``desired_version`` v comes after the desired state v and every rental change
   up to v (the provisioner acts on a decision once it is made), and all but a failure come after the
   ServerCreated of the server they changed.

Each event's *effective time* is the latest of its own ``occurred_at`` and its predecessors' effective
times (a Lamport-style correction); ties are broken by causal depth (a cause before its effect), then
by the event's own clock, then by event id. The result is a pure function of the set of events:
duplicates and arrival order cannot change it.

The projection's decisions (``projection.py``) depend on this order as little as possible (mostly on
which events are present); the order matters for the customer's timeline and for the few questions
only time can answer, such as "is the latest failure newer than the latest replay?".
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from spawnpoint_contracts import (
    DesiredServerStateChanged,
    Event,
    OrderCreated,
    OrderPaid,
    OrderRefunded,
    PaymentFailed,
    PaymentProcessing,
    ProvisionFailed,
    ProvisioningReplayed,
    ProvisioningRetryScheduled,
    RentalChanged,
    ServerActionFailed,
    ServerCreated,
    ServerInstalled,
    ServerResized,
    ServerSuspended,
    ServerTerminated,
    ServerUnsuspended,
)

PROVISIONING_EVENTS: tuple[type[Event], ...] = (
    ServerCreated,
    ServerInstalled,
    ProvisionFailed,
    ProvisioningRetryScheduled,
    ProvisioningReplayed,
)
"""Facts about the server, all of which follow a payment."""

PANEL_OUTCOMES: tuple[type[Event], ...] = (
    ServerSuspended,
    ServerUnsuspended,
    ServerResized,
    ServerTerminated,
    ServerActionFailed,
)
"""What the panel was made to show (or could not be) after the server existed, each with a ``desired_version``."""

_BEFORE_INSTALLED: tuple[type[Event], ...] = (
    ServerCreated,
    ProvisionFailed,
    ProvisioningRetryScheduled,
    ProvisioningReplayed,
)


def unique(events: Iterable[Event]) -> dict[uuid.UUID, Event]:
    """The events by id: a duplicate delivery is the same fact, kept once. When two copies with one id
    differ (which a correct producer never does), the smallest JSON wins so the choice is stable."""
    out: dict[uuid.UUID, Event] = {}
    for event in events:
        kept = out.get(event.event_id)
        if kept is None or (kept != event and event.model_dump_json() < kept.model_dump_json()):
            out[event.event_id] = event
    return out


def _domain_predecessors(event: Event, by_type: dict[type[Event], list[Event]]) -> list[Event]:
    """Events that certainly happened before ``event``, from what the business guarantees."""
    before: list[Event] = []
    if not isinstance(event, OrderCreated):
        before += by_type.get(OrderCreated, [])
    if isinstance(event, OrderPaid | PaymentFailed):
        before += by_type.get(PaymentProcessing, [])
    if isinstance(event, (*PROVISIONING_EVENTS, OrderRefunded)):
        before += by_type.get(OrderPaid, [])
    if isinstance(event, ServerInstalled):
        for kind in _BEFORE_INSTALLED:
            before += by_type.get(kind, [])
    if isinstance(event, RentalChanged):
        before += _rentals_up_to(by_type, event.payload.version - 1)
    elif isinstance(event, DesiredServerStateChanged):
        before += _rentals_up_to(by_type, event.payload.version)
        before += _desired_up_to(by_type, event.payload.version - 1)
    elif isinstance(event, PANEL_OUTCOMES):
        version = _desired_version(event)
        before += _rentals_up_to(by_type, version)
        before += _desired_up_to(by_type, version)
        if not isinstance(event, ServerActionFailed):
            before += by_type.get(ServerCreated, [])
    return before


def _rentals_up_to(by_type: dict[type[Event], list[Event]], version: int) -> list[Event]:
    return [e for e in by_type.get(RentalChanged, []) if isinstance(e, RentalChanged) and e.payload.version <= version]


def _desired_up_to(by_type: dict[type[Event], list[Event]], version: int) -> list[Event]:
    return [
        e
        for e in by_type.get(DesiredServerStateChanged, [])
        if isinstance(e, DesiredServerStateChanged) and e.payload.version <= version
    ]


def _desired_version(event: Event) -> int:
    if isinstance(event, ServerSuspended | ServerUnsuspended | ServerResized | ServerTerminated | ServerActionFailed):
        return event.payload.desired_version
    return 0


@dataclass(frozen=True)
class Placed:
    """An event and its effective time: never earlier than anything that happened before it."""

    event: Event
    at: datetime


def canonical(events: Iterable[Event]) -> list[Event]:
    """Unique by event id, in causal-then-time order (see the module docstring)."""
    return [p.event for p in place(events)]


def place(events: Iterable[Event]) -> list[Placed]:
    """Unique by event id, in causal-then-time order, each with its effective time."""
    by_id = unique(events)
    by_type: dict[type[Event], list[Event]] = {}
    for event in by_id.values():
        by_type.setdefault(type(event), []).append(event)

    # Visit in clock order so that, should the relations ever form a cycle (a producer bug), the
    # edge that closes it is dropped the same way whatever the arrival order.
    clock_order = sorted(by_id.values(), key=_clock_key)
    rank = {e.event_id: i for i, e in enumerate(clock_order)}
    effective: dict[uuid.UUID, tuple[datetime, int]] = {}
    visiting: set[uuid.UUID] = set()

    def resolve(event: Event) -> tuple[datetime, int]:
        done = effective.get(event.event_id)
        if done is not None:
            return done
        visiting.add(event.event_id)
        at, depth = event.occurred_at, 0
        predecessors = _domain_predecessors(event, by_type)
        cause = by_id.get(event.causation_id) if event.causation_id is not None else None
        if cause is not None:
            predecessors.append(cause)
        predecessors.sort(key=lambda e: rank[e.event_id])
        for before in predecessors:
            if before.event_id == event.event_id or before.event_id in visiting:
                continue
            before_at, before_depth = resolve(before)
            if before_at > at:
                at = before_at
            if before_depth >= depth:
                depth = before_depth + 1
        visiting.discard(event.event_id)
        effective[event.event_id] = (at, depth)
        return at, depth

    for event in clock_order:
        resolve(event)
    ordered = sorted(clock_order, key=lambda e: (*effective[e.event_id], rank[e.event_id]))
    return [Placed(e, effective[e.event_id][0]) for e in ordered]


def _clock_key(event: Event) -> tuple[datetime, uuid.UUID]:
    return event.occurred_at, event.event_id
