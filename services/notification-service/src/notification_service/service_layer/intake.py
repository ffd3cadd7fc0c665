"""The consumer's handler: remember who the customer is, and record the e-mails an event calls for.

Runs in the kit's subscription (the inbox claim, this handler and the commit are one transaction): the
message rows are recorded before anything is sent, so a crash after the commit loses nothing (the sender
finds them) and a redelivery adds nothing (the inbox, and the rows' unique event/kind/recipient).

A redelivery that is an operator's replay (``spawnctl dlq replay``: ``x-replay-count`` above what the
rows saw) runs ``on_replay`` instead: the event's e-mails that failed for good are sent again, to the
address the contact has now (an operator corrects it first with ``PUT /operator/orders/{id}/email``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

from spawnpoint_contracts import Event, OrderCreated, OrderPaid, ServerCreated, ServerInstalled, redact_order
from spawnpoint_kit.logs import get_logger
from spawnpoint_kit.messaging.handlers import HandlerTable, Subscription

from ..adapters.tables import MessageRow, MessageStatus
from ..domain.delivery import message_key
from ..domain.notices import OPTIONAL, notices_for
from ..queues import NOTIFICATION_EVENTS
from .unit_of_work import NotificationUnitOfWork

log = get_logger(__name__)
CONSUMER = "notification-service.events"


def stored_body(event: Event) -> bytes:
    """The event as a message row keeps it (for its dead-letter copy): an order snapshot's secret settings
    redacted, so a game password is not stored here nor put back on the broker by a dead letter."""
    body = event.model_dump(mode="json")
    payload = body.get("payload")
    if isinstance(payload, dict) and isinstance(payload.get("order"), dict):
        body["payload"] = {**payload, "order": redact_order(payload["order"])}
    return json.dumps(body, separators=(",", ":")).encode()


class Intake:
    def __init__(self, *, order_placed: bool) -> None:
        self.order_placed = order_placed

    async def on_event(self, event: Event, uow: NotificationUnitOfWork) -> None:
        if isinstance(event, OrderCreated | OrderPaid):
            await uow.contacts.remember(event.payload.order)
        if isinstance(event, ServerCreated | ServerInstalled):
            await uow.contacts.note_server(
                event.order_id, server_id=event.payload.server_id, identifier=event.payload.identifier
            )
        now = datetime.now(UTC)
        body = stored_body(event)
        for notice in notices_for(event, order_placed=self.order_placed):
            added = await uow.emails.add(
                MessageRow(
                    id=message_key(event.event_id, notice.kind, notice.role),
                    event_id=event.event_id,
                    event_type=event.event_type,
                    order_id=event.order_id,
                    kind=notice.kind.value,
                    role=notice.role.value,
                    optional=notice.kind in OPTIONAL,
                    status=MessageStatus.PENDING,
                    facts=notice.facts,
                    event_body=body,
                    occurred_at=event.occurred_at,
                    next_attempt_at=now,
                    created_at=now,
                    updated_at=now,
                )
            )
            if added:
                log.info("e-mail recorded", kind=notice.kind.value, recipient=notice.role.value)

    async def on_replay(self, event: Event, uow: NotificationUnitOfWork) -> None:
        """A delivery of an event handled before: only an operator's replay does something."""
        delivery = uow.delivery
        if delivery is None or delivery.replay_count < 1:
            return
        now = datetime.now(UTC)
        for row in await uow.emails.of_event(event.event_id):
            if row.status != MessageStatus.FAILED or row.replays >= delivery.replay_count:
                continue
            row.status = MessageStatus.PENDING
            row.attempts = 0
            row.next_attempt_at = now
            row.replays = delivery.replay_count
            uow.emails.save(row)
            log.info("replayed e-mail to be sent again", kind=row.kind, replay=delivery.replay_count)

    def table(self) -> HandlerTable[NotificationUnitOfWork]:
        return {Event: [self.on_event]}


def events_subscription(
    intake: Intake, unit_of_work: Callable[[], NotificationUnitOfWork]
) -> Subscription[NotificationUnitOfWork]:
    """The events queue, its table and its duplicate path (the replay)."""
    return Subscription(
        NOTIFICATION_EVENTS,
        intake.table(),
        unit_of_work=unit_of_work,
        consumer=CONSUMER,
        on_duplicate=intake.on_replay,
    )
