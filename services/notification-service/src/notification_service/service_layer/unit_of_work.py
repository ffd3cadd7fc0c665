"""notification-service's unit of work: the kit's, with its three repositories (as protocols here; the
PostgreSQL ones in ``adapters/repositories.py``, the in-memory ones in ``testing.py``)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Protocol

from sqlmodel.ext.asyncio.session import AsyncSession

from spawnpoint_contracts import OrderSnapshot
from spawnpoint_kit.unit_of_work import SqlUnitOfWork, UnitOfWork

from ..adapters.repositories import ContactRepository, MessageRepository, PreferenceRepository
from ..adapters.tables import ContactRow, MessageRow


class Contacts(Protocol):
    async def remember(self, order: OrderSnapshot) -> None: ...
    async def get(self, order_id: uuid.UUID) -> ContactRow | None: ...
    async def lock(self, order_id: uuid.UUID) -> ContactRow | None: ...
    async def save(self, contact: ContactRow) -> None: ...
    async def note_server(self, order_id: uuid.UUID, *, server_id: int, identifier: str | None) -> None: ...


class Messages(Protocol):
    async def add(self, row: MessageRow) -> bool: ...
    async def claim_due(self, *, now: datetime, lease: timedelta, limit: int) -> list[MessageRow]: ...
    async def lock(self, message_key: uuid.UUID) -> MessageRow | None: ...
    async def of_event(self, event_id: uuid.UUID) -> list[MessageRow]: ...
    async def of_order(self, order_id: uuid.UUID) -> list[MessageRow]: ...
    async def sent_to_since(self, recipient: str, since: datetime) -> int: ...
    async def oldest_unsent(self) -> tuple[datetime | None, int]: ...
    def save(self, row: MessageRow) -> None: ...


class Preferences(Protocol):
    async def optional_emails(self, user_id: str) -> bool: ...
    async def set_optional_emails(self, user_id: str, allowed: bool) -> None: ...


class NotificationUnitOfWork(UnitOfWork):
    contacts: Contacts
    emails: Messages
    preferences: Preferences


class SqlNotificationUnitOfWork(SqlUnitOfWork, NotificationUnitOfWork):
    def _repositories(self, session: AsyncSession) -> None:
        self.contacts = ContactRepository(session)
        self.emails = MessageRepository(session)
        self.preferences = PreferenceRepository(session)
