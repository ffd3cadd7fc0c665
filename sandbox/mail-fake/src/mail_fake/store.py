"""What mail-fake keeps: every message it accepted, and the refusals a test asked for.

Both live in memory for the life of the process (a development server: restart it to forget). The SMTP
handler and the HTTP API run on one event loop, so no lock is needed.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any


@dataclass
class StoredMessage:
    """One accepted message, parsed once: its envelope, headers and its text and HTML parts."""

    id: int
    received_at: datetime
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    tls: bool
    auth_login: str | None
    peer: str
    parsed: EmailMessage = field(repr=False)

    @property
    def message_id(self) -> str | None:
        value = self.parsed.get("Message-ID")
        return str(value).strip() if value is not None else None

    @property
    def subject(self) -> str:
        return str(self.parsed.get("Subject", ""))

    def part(self, subtype: str) -> str | None:
        """The body of the message's ``text/<subtype>`` part, decoded."""
        body = self.parsed.get_body(preferencelist=(subtype,))
        if body is None or body.get_content_subtype() != subtype:
            return None
        content = body.get_content()
        return content if isinstance(content, str) else None

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "received_at": self.received_at.isoformat(),
            "mail_from": self.mail_from,
            "rcpt_tos": self.rcpt_tos,
            "message_id": self.message_id,
            "subject": self.subject,
            "from": str(self.parsed.get("From", "")),
            "to": str(self.parsed.get("To", "")),
            "tls": self.tls,
            "auth_login": self.auth_login,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            **self.summary(),
            "headers": [[k, str(v)] for k, v in self.parsed.items()],
            "text": self.part("plain"),
            "html": self.part("html"),
            "raw": self.raw.decode("utf-8", errors="replace"),
        }


@dataclass
class Refusal:
    """Refuse the next ``count`` messages (every one while ``count`` is None) with ``code`` and ``message``.

    With ``recipient`` the refusal is the answer to that address's ``RCPT TO`` (a mailbox that does not
    exist); without, it is the answer to ``DATA`` for any message (a server that is busy: 451)."""

    id: int
    code: int
    message: str
    count: int | None
    recipient: str | None = None
    used: int = 0

    def applies_to(self, recipient: str | None) -> bool:
        if self.count is not None and self.used >= self.count:
            return False
        if self.recipient is None:
            return recipient is None
        return recipient is not None and recipient.lower() == self.recipient.lower()

    @property
    def reply(self) -> str:
        return f"{self.code} {self.message}"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "code": self.code,
            "message": self.message,
            "count": self.count,
            "recipient": self.recipient,
            "used": self.used,
        }


class MailStore:
    def __init__(self) -> None:
        self.messages: list[StoredMessage] = []
        self.refusals: list[Refusal] = []
        self._ids = itertools.count(1)
        self._refusal_ids = itertools.count(1)
        self.refused: list[dict[str, Any]] = []
        """Every refusal given, with what it refused (for a test to see the retry happened)."""

    def keep(
        self, *, mail_from: str, rcpt_tos: list[str], raw: bytes, tls: bool, auth_login: str | None, peer: str
    ) -> StoredMessage:
        parsed = BytesParser(policy=policy.default).parsebytes(raw)
        if not isinstance(parsed, EmailMessage):  # policy.default always gives one; a clear error otherwise
            raise TypeError("the parser did not produce an EmailMessage")
        message = StoredMessage(
            id=next(self._ids),
            received_at=datetime.now(UTC),
            mail_from=mail_from,
            rcpt_tos=list(rcpt_tos),
            raw=raw,
            tls=tls,
            auth_login=auth_login,
            peer=peer,
            parsed=parsed,
        )
        self.messages.append(message)
        return message

    def find(self, *, to: str | None = None, message_id: str | None = None) -> list[StoredMessage]:
        found = self.messages
        if to is not None:
            found = [m for m in found if to.lower() in (r.lower() for r in m.rcpt_tos)]
        if message_id is not None:
            found = [m for m in found if m.message_id == message_id]
        return found

    def get(self, message_id: int) -> StoredMessage | None:
        return next((m for m in self.messages if m.id == message_id), None)

    def clear(self) -> int:
        count = len(self.messages)
        self.messages.clear()
        self.refused.clear()
        return count

    def refuse(self, *, code: int, message: str, count: int | None, recipient: str | None) -> Refusal:
        refusal = Refusal(next(self._refusal_ids), code, message, count, recipient)
        self.refusals.append(refusal)
        return refusal

    def refusal_for(self, recipient: str | None) -> Refusal | None:
        """The first refusal that applies (and counts it as used), or None: accept."""
        for refusal in self.refusals:
            if refusal.applies_to(recipient):
                refusal.used += 1
                return refusal
        return None

    def note_refused(self, refusal: Refusal, *, stage: str, recipients: list[str], message_id: str | None) -> None:
        self.refused.append(
            {
                "refusal": refusal.id,
                "reply": refusal.reply,
                "stage": stage,
                "recipients": recipients,
                "message_id": message_id,
                "at": datetime.now(UTC).isoformat(),
            }
        )
