"""The sender: a background job that sends the recorded e-mails, each exactly once as far as SMTP allows.

One round (``step``):

1. **Claim** due rows (``FOR UPDATE SKIP LOCKED``, oldest first, one at a time per order and recipient)
   and mark them ``sending`` with a lease, in one short transaction: two replicas never take one row.
2. Per row, **address** it in a transaction: the recipient (the contact's current address, or the
   operator's), its deterministic ``Message-ID``; an optional kind the customer turned off is
   ``suppressed``; a recipient over the hourly limit waits (``pending`` a minute later, nothing dropped).
3. **Render and send** outside any transaction (the panel is asked for the connect address of a ready
   server; the SMTP conversation may take seconds).
4. **Record the outcome**: accepted -> ``sent`` and ``NotificationSent`` staged in the same transaction; a
   4xx or a connection failure -> ``pending`` again after the next delay of ``NOTIFICATION_RETRY_DELAYS``
   (past the last: dead-lettered as ``smtp_retries_exhausted``); a 5xx -> ``failed`` and the event copied
   to the queue's DLQ with the server's reply (``smtp_rejected``), for ``spawnctl dlq replay`` once the
   address is fixed.

A process killed between the SMTP server's acceptance and step 4 leaves the row ``sending``; when its
lease ends another round sends it again with the same ``Message-ID`` (the receiving server can drop the
copy). That is the one window where a customer can get a second copy, never a lost e-mail.

Nothing the e-mail says is logged: only its kind, role and Message-ID.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from pathlib import Path
from typing import Any, Protocol

from spawnpoint_contracts import NotificationSent, NotificationSentPayload, parse_event
from spawnpoint_kit.logs import get_logger, log_context
from spawnpoint_kit.messaging.delivery import Delivery
from spawnpoint_kit.messaging.topology import Topology
from spawnpoint_kit.unit_of_work import count_after_commit

from .. import metrics
from ..adapters.panel import PanelUnavailable
from ..adapters.tables import ContactRow, MessageStatus
from ..config import Settings
from ..domain.delivery import FailureClass, SmtpFailure, message_id_header, parse_delays, retry_delay
from ..domain.notices import Kind, Role
from ..domain.rendering import Rendered, render
from ..queues import NOTIFICATION_EVENTS
from .unit_of_work import NotificationUnitOfWork

log = get_logger(__name__)
PRODUCER = "notification-service"
RATE_WINDOW = timedelta(hours=1)
RATE_PAUSE = timedelta(minutes=1)


class Mailer(Protocol):
    async def send(self, message: EmailMessage, *, sender: str, recipient: str) -> SmtpFailure | None: ...


class Directory(Protocol):
    async def connect_address(self, server_id: int) -> str: ...


@dataclass(frozen=True)
class Addressed:
    """A claimed row, ready to render: where it goes and what its template sees."""

    key: uuid.UUID
    kind: str
    role: str
    recipient: str
    message_id: str
    locale: str
    time_zone: str
    facts: dict[str, Any]
    server_id: int | None


class Sender:
    def __init__(
        self,
        unit_of_work: Callable[[], NotificationUnitOfWork],
        *,
        mailer: Mailer,
        directory: Directory,
        settings: Settings,
        topology: Topology,
    ) -> None:
        self._uow = unit_of_work
        self._mailer = mailer
        self._directory = directory
        self._settings = settings
        self._topology = topology
        self._delays = parse_delays(settings.retry_delays)
        self._sender_address = parseaddr(settings.mail_from)[1] or settings.mail_from
        self._pause = _PauseHook.parse(settings.test_pause_after_accept)

    async def step(self) -> bool:
        """One round; True when more rows may be due at once (a full batch)."""
        now = datetime.now(UTC)
        async with self._uow() as uow:
            rows = await uow.emails.claim_due(
                now=now,
                lease=timedelta(seconds=self._settings.send_lease_seconds),
                limit=self._settings.sender_batch_size,
            )
            await uow.commit()
        for row in rows:
            with log_context(order_id=row.order_id, event_id=row.event_id):
                await self._deliver(row.id)
        return len(rows) >= self._settings.sender_batch_size

    async def measure(self) -> bool:
        """Set the queue's age and depth gauges (a periodic job of its own)."""
        async with self._uow() as uow:
            oldest, depth = await uow.emails.oldest_unsent()
        metrics.QUEUE_DEPTH.set(depth)
        metrics.QUEUE_AGE.set((datetime.now(UTC) - oldest).total_seconds() if oldest is not None else 0.0)
        return False

    async def _deliver(self, key: uuid.UUID) -> None:
        addressed = await self._address(key)
        if addressed is None:
            return
        try:
            rendered = await self._render(addressed)
            message = _message(rendered, addressed, self._settings.mail_from)
        except PanelUnavailable as exc:
            await self._failed(key, SmtpFailure(FailureClass.CONNECTION, None, str(exc)), label="panel")
            return
        except Exception as exc:  # a template or header that cannot be made: a bug, waiting will not fix it
            log.exception("e-mail could not be rendered", kind=addressed.kind, error=type(exc).__name__)
            broken = SmtpFailure(FailureClass.PERMANENT, None, f"could not be rendered: {type(exc).__name__}")
            await self._failed(key, broken, label="render")
            return
        failure = await self._mailer.send(message, sender=self._sender_address, recipient=addressed.recipient)
        if failure is not None:
            await self._failed(key, failure, label=failure.failure.value)
            return
        await self._pause.maybe(addressed.recipient, addressed.message_id)
        await self._sent(key, rendered)

    async def _address(self, key: uuid.UUID) -> Addressed | None:
        addressed = await self._address_in_transaction(key)
        if addressed == "no_contact":
            failure = SmtpFailure(FailureClass.CONNECTION, None, "the order's contact is not known yet")
            await self._failed(key, failure, label="no_contact")
            return None
        return addressed if isinstance(addressed, Addressed) else None

    async def _address_in_transaction(self, key: uuid.UUID) -> Addressed | str | None:
        now = datetime.now(UTC)
        async with self._uow() as uow:
            row = await uow.emails.lock(key)
            if row is None or row.status != MessageStatus.SENDING:
                return None
            contact = await uow.contacts.get(row.order_id)
            if contact is None:
                return "no_contact"
            optional_off = row.optional and not await uow.preferences.optional_emails(contact.user_id)
            if optional_off and row.role == Role.CUSTOMER:
                row.status = MessageStatus.SUPPRESSED
                uow.emails.save(row)
                count_after_commit(uow, metrics.SUPPRESSED.labels(row.kind).inc)
                await uow.commit()
                log.info("optional e-mail suppressed by the customer's preference", kind=row.kind)
                return None
            recipient = self._settings.operator_email if row.role == Role.OPERATOR else contact.email
            if await uow.emails.sent_to_since(recipient, now - RATE_WINDOW) >= self._settings.rate_limit_per_hour:
                row.status = MessageStatus.PENDING
                row.next_attempt_at = now + RATE_PAUSE
                uow.emails.save(row)
                count_after_commit(uow, metrics.DEFERRED.labels("rate_limit").inc)
                await uow.commit()
                log.info("e-mail deferred: the recipient's hourly limit is reached", kind=row.kind)
                return None
            row.recipient = recipient
            row.message_id = message_id_header(row.event_id, row.kind, recipient, self._settings.message_id_domain)
            row.locale = contact.locale
            uow.emails.save(row)
            await uow.commit()
            return Addressed(
                key=row.id,
                kind=row.kind,
                role=row.role,
                recipient=recipient,
                message_id=row.message_id,
                locale=contact.locale,
                time_zone=contact.time_zone,
                facts={**_contact_facts(contact), **row.facts},
                server_id=row.facts.get("server_id") or contact.panel_server_id,
            )

    async def _render(self, addressed: Addressed) -> Rendered:
        facts = dict(addressed.facts)
        if addressed.kind == Kind.SERVER_READY:
            if addressed.server_id is None:
                raise PanelUnavailable("the order's server is not known yet")
            facts["connect_address"] = await self._directory.connect_address(int(addressed.server_id))
            identifier = facts.get("identifier")
            facts["link"] = f"{self._settings.panel_link_base}/server/{identifier}" if identifier else None
        if addressed.role == Role.OPERATOR:
            return render(addressed.kind, locale="en", time_zone="UTC", facts=facts)
        return render(addressed.kind, locale=addressed.locale, time_zone=addressed.time_zone, facts=facts)

    async def _sent(self, key: uuid.UUID, rendered: Rendered) -> None:
        now = datetime.now(UTC)
        async with self._uow() as uow:
            row = await uow.emails.lock(key)
            if row is None or row.status == MessageStatus.SENT:
                return
            row.status = MessageStatus.SENT
            row.sent_at = now
            row.attempts += 1
            row.subject = rendered.subject[:500]
            row.locale = rendered.locale
            row.last_error = None
            uow.emails.save(row)
            event = parse_event(row.event_body)
            uow.publish(
                NotificationSent(
                    order_id=row.order_id,
                    correlation_id=event.correlation_id,
                    causation_id=row.event_id,
                    producer=PRODUCER,
                    payload=NotificationSentPayload(
                        kind=row.kind,
                        message_id=row.message_id or "",
                        recipient=Role(row.role).value,
                        locale=rendered.locale,
                        attempts=row.attempts,
                        caused_by=row.event_type,
                    ),
                )
            )
            count_after_commit(uow, metrics.SENT.labels(row.kind).inc)
            await uow.commit()
        log.info("e-mail sent", kind=row.kind, recipient=row.role, message_id=row.message_id, attempts=row.attempts)

    async def _failed(self, key: uuid.UUID, failure: SmtpFailure, *, label: str) -> None:
        now = datetime.now(UTC)
        async with self._uow() as uow:
            row = await uow.emails.lock(key)
            if row is None or row.status not in (MessageStatus.SENDING, MessageStatus.PENDING):
                return
            row.attempts += 1
            row.last_error = failure.describe()[:2000]
            row.failure_class = failure.failure.value
            delay = retry_delay(self._delays, row.attempts) if failure.retryable else None
            if delay is not None:
                row.status = MessageStatus.PENDING
                row.next_attempt_at = now + delay
                count_after_commit(uow, metrics.FAILED.labels(row.kind, label).inc)
                outcome = f"retry in {delay.total_seconds():g}s"
            else:
                row.status = MessageStatus.FAILED
                reason = _DEAD_LETTER_REASONS.get(label) or (
                    "smtp_retries_exhausted" if failure.retryable else "smtp_rejected"
                )
                uow.dead_letter(
                    reason,
                    f"{row.kind} e-mail to the {row.role}: {failure.describe()}",
                    delivery=Delivery.of(parse_event(row.event_body), self._topology.queue_name(NOTIFICATION_EVENTS)),
                    extra_headers={"x-spawnpoint-email-kind": row.kind, "x-spawnpoint-email-role": row.role},
                )
                count_after_commit(
                    uow, metrics.FAILED.labels(row.kind, "exhausted" if failure.retryable else label).inc
                )
                outcome = f"dead-lettered ({reason})"
            uow.emails.save(row)
            await uow.commit()
        log.warning(
            "e-mail not accepted",
            kind=row.kind,
            recipient=row.role,
            failure=failure.failure.value,
            reply=failure.describe()[:300],
            attempts=row.attempts,
            outcome=outcome,
        )


_DEAD_LETTER_REASONS = {"panel": "panel_unavailable", "no_contact": "no_contact", "render": "render_failed"}
"""Why an e-mail was dead-lettered when it never reached the SMTP server."""


def _contact_facts(contact: ContactRow) -> dict[str, Any]:
    return {
        "order_id": str(contact.order_id),
        "server_name": contact.server_name,
        "game_name": contact.game_name,
        "plan_name": contact.plan_name,
        "identifier": contact.identifier,
        "customer_name": contact.customer_name,
    }


def _message(rendered: Rendered, addressed: Addressed, mail_from: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = mail_from
    message["To"] = addressed.recipient
    message["Subject"] = rendered.subject
    message["Message-ID"] = addressed.message_id
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Auto-Submitted"] = "auto-generated"
    message["X-Spawnpoint-Kind"] = addressed.kind
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    message["Content-Language"] = rendered.locale  # after: making it multipart moves Content-* headers down
    return message


@dataclass(frozen=True)
class _PauseHook:
    """Tests only (``NOTIFICATION_TEST_PAUSE_AFTER_ACCEPT=ADDRESS=FILE``): after the SMTP server accepted
    a message to ADDRESS, write its Message-ID to FILE and wait to be killed, before it is marked sent.
    Once per FILE (a restarted process finds it and goes on)."""

    address: str | None = None
    marker: Path | None = None

    @classmethod
    def parse(cls, value: str | None) -> _PauseHook:
        if not value:
            return cls()
        address, _, path = value.partition("=")
        if not address or not path:
            raise ValueError("NOTIFICATION_TEST_PAUSE_AFTER_ACCEPT must be ADDRESS=FILE")
        return cls(address.strip().lower(), Path(path))

    async def maybe(self, recipient: str, message_id: str) -> None:
        if self.marker is None or recipient.lower() != self.address or self.marker.exists():
            return
        self.marker.write_text(message_id)
        log.warning("test hook: paused after the SMTP server accepted, before marking sent")
        await asyncio.Event().wait()  # never set: the test kills the process here
