"""In-memory fakes of notification-service's repositories and unit of work, for handler and sender tests
(no database, no broker), and a mailer that answers what a test tells it to."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from email.message import EmailMessage

from spawnpoint_contracts import OrderSnapshot
from spawnpoint_kit.unit_of_work import FakeUnitOfWork

from .adapters.tables import ContactRow, MessageRow, MessageStatus
from .domain.delivery import SmtpFailure
from .service_layer.unit_of_work import NotificationUnitOfWork


class FakeContacts:
    def __init__(self) -> None:
        self.rows: dict[uuid.UUID, ContactRow] = {}

    async def remember(self, order: OrderSnapshot) -> None:
        existing = self.rows.get(order.order_id)
        email = existing.email if existing is not None and existing.email_corrected_at else order.email
        self.rows[order.order_id] = ContactRow(
            order_id=order.order_id,
            user_id=order.user_id,
            email=email,
            email_corrected_at=existing.email_corrected_at if existing else None,
            locale=order.locale,
            time_zone=order.time_zone,
            customer_name=order.customer_name or (existing.customer_name if existing else None),
            server_name=order.server_name,
            game_name=order.game_name,
            plan_name=order.plan_name,
            panel_server_id=existing.panel_server_id if existing else None,
            identifier=existing.identifier if existing else None,
        )

    async def get(self, order_id: uuid.UUID) -> ContactRow | None:
        return self.rows.get(order_id)

    async def lock(self, order_id: uuid.UUID) -> ContactRow | None:
        return self.rows.get(order_id)

    async def save(self, contact: ContactRow) -> None:
        self.rows[contact.order_id] = contact

    async def note_server(self, order_id: uuid.UUID, *, server_id: int, identifier: str | None) -> None:
        contact = self.rows.get(order_id)
        if contact is not None:
            contact.panel_server_id = server_id
            contact.identifier = identifier or contact.identifier


class FakeMessages:
    def __init__(self) -> None:
        self.rows: dict[uuid.UUID, MessageRow] = {}

    async def add(self, row: MessageRow) -> bool:
        if row.id in self.rows:
            return False
        self.rows[row.id] = row
        return True

    async def claim_due(self, *, now: datetime, lease: timedelta, limit: int) -> list[MessageRow]:
        unsent = (MessageStatus.PENDING, MessageStatus.SENDING)
        ordered = sorted(self.rows.values(), key=lambda r: (r.occurred_at, r.id))
        due: list[MessageRow] = []
        for row in ordered:
            earlier = [
                e
                for e in ordered
                if e.order_id == row.order_id
                and e.role == row.role
                and e.status in unsent
                and (e.occurred_at, e.id) < (row.occurred_at, row.id)
            ]
            if row.status in unsent and row.next_attempt_at <= now and not earlier:
                due.append(row)
        for row in due[:limit]:
            row.status = MessageStatus.SENDING
            row.next_attempt_at = now + lease
        return due[:limit]

    async def lock(self, message_key: uuid.UUID) -> MessageRow | None:
        return self.rows.get(message_key)

    async def of_event(self, event_id: uuid.UUID) -> list[MessageRow]:
        return [r for r in self.rows.values() if r.event_id == event_id]

    async def of_order(self, order_id: uuid.UUID) -> list[MessageRow]:
        return sorted((r for r in self.rows.values() if r.order_id == order_id), key=lambda r: (r.occurred_at, r.id))

    async def sent_to_since(self, recipient: str, since: datetime) -> int:
        return sum(1 for r in self.rows.values() if r.recipient == recipient and r.sent_at and r.sent_at >= since)

    async def oldest_unsent(self) -> tuple[datetime | None, int]:
        unsent = [r for r in self.rows.values() if r.status in (MessageStatus.PENDING, MessageStatus.SENDING)]
        return (min(r.created_at for r in unsent) if unsent else None), len(unsent)

    def save(self, row: MessageRow) -> None:
        self.rows[row.id] = row


class FakePreferences:
    def __init__(self) -> None:
        self.rows: dict[str, bool] = {}

    async def optional_emails(self, user_id: str) -> bool:
        return self.rows.get(user_id, True)

    async def set_optional_emails(self, user_id: str, allowed: bool) -> None:
        self.rows[user_id] = allowed


class FakeNotificationUnitOfWork(FakeUnitOfWork, NotificationUnitOfWork):
    contacts: FakeContacts
    emails: FakeMessages
    preferences: FakePreferences

    def __init__(self) -> None:
        super().__init__()
        self.contacts = FakeContacts()
        self.emails = FakeMessages()
        self.preferences = FakePreferences()


class FakeMailer:
    """Accepts every message, or answers the failures queued in ``answers`` first (one per send)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, EmailMessage]] = []
        self.answers: list[SmtpFailure] = []

    async def send(self, message: EmailMessage, *, sender: str, recipient: str) -> SmtpFailure | None:
        if self.answers:
            return self.answers.pop(0)
        self.sent.append((recipient, message))
        return None


class FakeDirectory:
    def __init__(self, address: str = "10.0.0.5:25565") -> None:
        self.address = address

    async def connect_address(self, server_id: int) -> str:
        return self.address
