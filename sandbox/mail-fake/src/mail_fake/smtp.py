"""The SMTP side of mail-fake: a real SMTP server (aiosmtpd) on the HTTP server's event loop.

It offers STARTTLS with a self-signed certificate made at start (``tls.py``) and accepts any AUTH PLAIN
or LOGIN (with or without TLS: a development server), so a client configured as in production (STARTTLS,
a user and a password) works against it unchanged. Each message it accepts is kept in the ``MailStore``;
a refusal a test asked for is answered instead, at ``RCPT TO`` for a named recipient (550: no such
mailbox) or at ``DATA`` for any message (451: try again later).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from .store import MailStore

log = logging.getLogger("mail_fake.smtp")


class Handler:
    """aiosmtpd's handler hooks: refuse what a test asked to refuse, keep everything else."""

    def __init__(self, store: MailStore) -> None:
        self.store = store

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        refusal = self.store.refusal_for(address)
        if refusal is not None:
            self.store.note_refused(refusal, stage="rcpt", recipients=[address], message_id=None)
            log.info("refusing recipient %s with %s", address, refusal.reply)
            return refusal.reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8")
        refusal = self.store.refusal_for(None)
        if refusal is not None:
            self.store.note_refused(
                refusal, stage="data", recipients=list(envelope.rcpt_tos), message_id=_message_id(raw)
            )
            log.info("refusing a message with %s", refusal.reply)
            return refusal.reply
        login = getattr(session.auth_data, "login", None)
        message = self.store.keep(
            mail_from=str(envelope.mail_from or ""),
            rcpt_tos=[str(r) for r in envelope.rcpt_tos],
            raw=raw,
            tls=session.ssl is not None,
            auth_login=login.decode("utf-8", errors="replace") if isinstance(login, bytes) else login,
            peer=str(session.peer),
        )
        log.info("kept message %s for %s", message.id, ", ".join(message.rcpt_tos))
        return f"250 Message accepted as {message.id}"


def _message_id(raw: bytes) -> str | None:
    for line in raw.split(b"\r\n\r\n", 1)[0].splitlines():
        if line.lower().startswith(b"message-id:"):
            return line.split(b":", 1)[1].strip().decode("ascii", errors="replace")
    return None


def accept_any_login(server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any) -> AuthResult:
    """Every AUTH PLAIN / LOGIN succeeds (the password is never kept or logged)."""
    if not isinstance(auth_data, LoginPassword):
        return AuthResult(success=False, handled=False)
    return AuthResult(success=True, auth_data=LoginPassword(auth_data.login, b""))


async def start_smtp(store: MailStore, *, host: str, port: int, tls: ssl.SSLContext | None) -> asyncio.Server:
    """Listen for SMTP on ``host:port`` on the running loop (stop with ``close()``)."""
    handler = Handler(store)
    loop = asyncio.get_running_loop()

    def factory() -> SMTP:
        return SMTP(
            handler,
            hostname="mail-fake.localhost",
            ident="mail-fake (Spawnpoint development SMTP server)",
            tls_context=tls,
            require_starttls=False,
            authenticator=accept_any_login,
            auth_require_tls=False,
            auth_required=False,
        )

    return await loop.create_server(factory, host=host, port=port)
