"""Delivery over SMTP with aiosmtplib: STARTTLS and AUTH as configured, one connection per e-mail.

``SmtpMailer.send`` returns None once the server accepted the message (its ``250`` to the data), or the
``SmtpFailure`` it classified (``domain/delivery.py``): a reply code with the server's words, or no reply
at all (a connection that failed or timed out). The password is a ``SecretStr`` read only here, never
logged.
"""

from __future__ import annotations

import ssl
from email.message import EmailMessage

import aiosmtplib

from ..config import Settings
from ..domain.delivery import SmtpFailure, classify


class SmtpMailer:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._tls = ssl.create_default_context()
        if not settings.smtp_tls_verify:
            self._tls.check_hostname = False
            self._tls.verify_mode = ssl.CERT_NONE

    async def send(self, message: EmailMessage, *, sender: str, recipient: str) -> SmtpFailure | None:
        s = self._settings
        try:
            await aiosmtplib.send(
                message,
                sender=sender,
                recipients=[recipient],
                hostname=s.smtp_host,
                port=s.smtp_port,
                username=s.smtp_username,
                password=s.smtp_password.get_secret_value() if s.smtp_password is not None else None,
                start_tls=s.smtp_starttls,
                tls_context=self._tls if s.smtp_starttls else None,
                validate_certs=s.smtp_tls_verify,
                timeout=s.smtp_timeout_seconds,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            refused = exc.recipients[0] if exc.recipients else None
            return classify(refused.code if refused else 550, refused.message if refused else str(exc))
        except aiosmtplib.SMTPResponseException as exc:
            return classify(exc.code, exc.message)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            return classify(None, f"{type(exc).__name__}: {exc}")
        return None
