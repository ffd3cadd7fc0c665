"""status-service's handler table: every event on its projection queue is projected (registered in bootstrap).

The kit's subscription opens the unit of work, claims the inbox key ``(CONSUMER, event id)``, runs
``project_event`` and commits; an event claimed before runs ``count_delivery`` instead. Deliveries that
arrive together are claimed and projected together in one transaction (``project_events``, group
commit). ``apply_event`` runs one event through that same subscription, for tests and tools that project
without a broker.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from spawnpoint_contracts import Event
from spawnpoint_kit.messaging.delivery import Delivery
from spawnpoint_kit.messaging.handlers import HandlerTable, Subscription

from ..queues import STATUS_PROJECTION
from .projector import CONSUMER, Outcome, count_delivery, project_event, project_events
from .unit_of_work import StatusUnitOfWork

HANDLERS: HandlerTable[StatusUnitOfWork] = {Event: [project_event]}
"""Every event type counts: the projection decides what each one means for the customer."""


def projection_subscription(unit_of_work: Callable[[], StatusUnitOfWork]) -> Subscription[StatusUnitOfWork]:
    """The projection queue, its table and its duplicate path (the consumer name is pinned: the inbox rows
    already stored carry it)."""
    return Subscription(
        STATUS_PROJECTION,
        HANDLERS,
        unit_of_work=unit_of_work,
        consumer=CONSUMER,
        on_duplicate=count_delivery,
        batched=True,
        batch_handler=project_events,
    )


@dataclass(frozen=True)
class Applied:
    duplicate: bool
    outcome: Outcome | None = None


async def apply_event(unit_of_work: Callable[[], StatusUnitOfWork], event: Event) -> Applied:
    """Project one event exactly as the consumer does (idempotent: a second delivery only counts as a
    delivery), and say what it did."""
    opened: list[StatusUnitOfWork] = []

    def tracked() -> StatusUnitOfWork:
        uow = unit_of_work()
        opened.append(uow)
        return uow

    await projection_subscription(tracked).handle(event, Delivery.of(event, STATUS_PROJECTION.name))
    [uow] = opened
    if not uow.projected:
        return Applied(duplicate=True)
    return Applied(duplicate=False, outcome=uow.projected[0])
