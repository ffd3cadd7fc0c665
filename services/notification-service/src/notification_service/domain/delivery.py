"""Identity and fate of one e-mail: its deterministic ids, how an SMTP answer is classified, when to retry.

- ``message_key(event_id, kind, role)`` is the row's primary key: one e-mail per event, kind and recipient,
  so a redelivered event (or a second consumer replica) finds the row and adds nothing.
- ``message_id_header(event_id, kind, address, domain)`` is the ``Message-ID`` header: derived from the
  event, the kind and the address it goes to, so a resend after a crash carries the same id (a receiving
  server can deduplicate) and a resend to a corrected address is a new e-mail to a new mailbox.
- ``classify`` turns what the SMTP client saw into ``TRANSIENT`` (a 4xx reply, a connection that failed or
  timed out: retry later with backoff) or ``PERMANENT`` (a 5xx reply: dead-letter with the server's words).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

NAMESPACE = uuid.UUID("6f9f3c1e-5a0d-4d5e-9b7a-2c1d0e3f4a5b")
"""The namespace of every id derived here (uuid5): fixed forever, or ids change and e-mails double."""


def message_key(event_id: uuid.UUID, kind: str, role: str) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, f"row/{event_id}/{kind}/{role}")


def message_id_header(event_id: uuid.UUID, kind: str, address: str, domain: str) -> str:
    local = uuid.uuid5(NAMESPACE, f"mail/{event_id}/{kind}/{address.strip().lower()}")
    return f"<{local}@{domain}>"


class FailureClass(StrEnum):
    TRANSIENT = "transient"
    """A 4xx reply: the server asks us to try again later."""
    CONNECTION = "connection"
    """No SMTP answer at all (refused, reset, timed out): retried like a 4xx."""
    PERMANENT = "permanent"
    """A 5xx reply: this e-mail will never be accepted as it is."""


@dataclass(frozen=True)
class SmtpFailure:
    """What went wrong sending one e-mail, in words safe for a log and a dead-letter header."""

    failure: FailureClass
    code: int | None
    reply: str

    @property
    def retryable(self) -> bool:
        return self.failure != FailureClass.PERMANENT

    def describe(self) -> str:
        return f"{self.code} {self.reply}".strip() if self.code is not None else self.reply


def classify(code: int | None, reply: str) -> SmtpFailure:
    """An SMTP reply code (None: no reply, the connection failed) as transient, connection or permanent."""
    text = " ".join(reply.split())[:1000]
    if code is None:
        return SmtpFailure(FailureClass.CONNECTION, None, text)
    if 500 <= code <= 599:
        return SmtpFailure(FailureClass.PERMANENT, code, text)
    return SmtpFailure(FailureClass.TRANSIENT, code, text)


def parse_delays(text: str) -> tuple[float, ...]:
    """``"10,60,300"`` -> seconds before the first, second and third retry (a clear error otherwise)."""
    try:
        delays = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError as exc:
        raise ValueError(f"NOTIFICATION_RETRY_DELAYS must be seconds separated by commas, not {text!r}") from exc
    if not delays or any(d <= 0 for d in delays):
        raise ValueError(f"NOTIFICATION_RETRY_DELAYS needs at least one positive delay, not {text!r}")
    return delays


def retry_delay(delays: tuple[float, ...], failed_attempts: int) -> timedelta | None:
    """How long to wait after the ``failed_attempts``-th failed attempt; None: no retry is left."""
    if failed_attempts < 1 or failed_attempts > len(delays):
        return None
    return timedelta(seconds=delays[failed_attempts - 1])
