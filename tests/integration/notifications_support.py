"""The notification tests' harness (``test_notifications.py``): a rental stack plus mail-fake and the
notification service, and the ``Mail`` harness that places orders with a locale and an address, reads
what mail-fake received, tells it to refuse, and reads the notification service's tables (read only).

The notification service talks to mail-fake as to a production relay: STARTTLS (mail-fake's self-signed
certificate, so not verified) and AUTH with a user and a password, which the no-secrets test then looks
for in every log. Its retry delays and send lease are short so the retry and crash paths run in seconds.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from devstack import Stack, StackConfig, drop_databases, drop_namespace

from .conftest import LOG_ROOT, customer_token
from .provisioning_support import PaidOrder
from .rentals_support import Rentals, rental_stack_config
from .support import eventually

QUEUE = "notification-service.events"
SMTP_PASSWORD = f"smtp-pass-{uuid.uuid4().hex}"
"""The relay's password: it must appear in no log and no e-mail."""
NAMES = (*Stack.ORDER, "mail-fake", "notification-service")


@contextmanager
def notification_stack() -> Iterator[Stack]:
    """One stack for the module: the rental stack's tuning, mail-fake and the notification service (with
    the test-only pause after the SMTP server accepted a message to ``crash_address``)."""
    run_id = uuid.uuid4().hex[:8]
    config = StackConfig.for_tests(run_id, LOG_ROOT / run_id, **rental_stack_config())
    config.per_process_env["notification-service"] = {
        "SMTP_STARTTLS": "true",
        "SMTP_TLS_VERIFY": "false",
        "SMTP_USERNAME": "spawnpoint",
        "SMTP_PASSWORD": SMTP_PASSWORD,
        "NOTIFICATION_RETRY_DELAYS": "1,2,3",
        "NOTIFICATION_SEND_LEASE_SECONDS": "3",
        "NOTIFICATION_SENDER_POLL_SECONDS": "0.2",
        "NOTIFICATION_TEST_PAUSE_AFTER_ACCEPT": f"{crash_address(config)}={pause_marker(config)}",
        "RELAY_POLL_SECONDS": "0.2",
        "DLQ_METRICS_SECONDS": "1",
    }
    stack = Stack(config)
    try:
        stack.start(NAMES)
        yield stack
    finally:
        stack.stop()
        drop_databases(config)
        drop_namespace(config)


def crash_address(config: StackConfig) -> str:
    return f"crash-{config.namespace.strip('.')}@example.test"


def pause_marker(config: StackConfig) -> Path:
    return config.log_dir / "paused-after-accept.txt"


class Mail(Rentals):
    """The rental harness plus mail-fake and the notification service."""

    async def order_for(
        self,
        email: str,
        *,
        locale: str | None = None,
        time_zone: str | None = None,
        game_id: str = "minecraft-paper",
        plan_id: str = "starter",
        settings: dict[str, str] | None = None,
        name: str | None = None,
    ) -> PaidOrder:
        """Place an order as a customer whose token carries ``email`` (and ``name``), with a locale and time
        zone."""
        user_id = f"user-{uuid.uuid4().hex[:10]}"
        token = customer_token(user_id, email=email, name=name)
        body: dict[str, Any] = {
            "game_id": game_id,
            "plan_id": plan_id,
            "server_name": f"World {user_id[-4:]}",
            "settings": settings or {},
        }
        if locale is not None:
            body["locale"] = locale
        if time_zone is not None:
            body["time_zone"] = time_zone
        placed = await self.api.http.post(
            self.api.url("order-service", "/orders"),
            headers={**self.api.auth(token), "Idempotency-Key": str(uuid.uuid4())},
            json=body,
        )
        assert placed.status_code == 201, placed.text
        return PaidOrder(placed.json()["id"], token, user_id)

    # mail-fake ------------------------------------------------------------------------------------

    async def mails(self, to: str | None = None) -> list[dict[str, Any]]:
        params = {"to": to} if to is not None else {}
        response = await self.api.http.get(self.api.url("mail-fake", "/_fake/messages"), params=params)
        response.raise_for_status()
        messages: list[dict[str, Any]] = response.json()["messages"]
        return messages

    async def mails_of_kind(self, to: str, kind: str) -> list[dict[str, Any]]:
        return [m for m in await self.mails(to) if _header(m, "X-Spawnpoint-Kind") == kind]

    async def wait_mails(self, to: str, kind: str, *, count: int = 1, timeout: float = 60.0) -> list[dict[str, Any]]:
        async def probe() -> list[dict[str, Any]] | None:
            found = await self.mails_of_kind(to, kind)
            return found if len(found) >= count else None

        return await eventually(probe, timeout=timeout, what=f"{count} {kind} e-mail(s) to {to}")

    async def refuse(self, *, code: int, recipient: str, count: int | None = 1, message: str = "") -> None:
        response = await self.api.http.post(
            self.api.url("mail-fake", "/_fake/refusals"),
            json={"code": code, "recipient": recipient, "count": count, "message": message},
        )
        assert response.status_code == 201, response.text

    async def refused(self, recipient: str) -> list[dict[str, Any]]:
        response = await self.api.http.get(self.api.url("mail-fake", "/_fake/refusals"))
        return [r for r in response.json()["refused"] if recipient in r["recipients"]]

    async def accept_everything(self) -> None:
        await self.api.http.delete(self.api.url("mail-fake", "/_fake/refusals"))

    # the notification service ---------------------------------------------------------------------

    async def emails_row(self, order: PaidOrder, kind: str) -> dict[str, Any] | None:
        rows = await self.sql(
            "notification-service",
            "SELECT * FROM messages WHERE order_id = $1 AND kind = $2",
            uuid.UUID(order.order_id),
            kind,
        )
        return dict(rows[0]) if rows else None

    async def sent_row(self, order: PaidOrder, kind: str) -> dict[str, Any] | None:
        row = await self.emails_row(order, kind)
        return row if row is not None and row["status"] == "sent" else None

    async def notifications_sent(self, order: PaidOrder) -> list[dict[str, Any]]:
        import json

        rows = await self.sql(
            "notification-service",
            "SELECT body FROM outbox WHERE message_type = 'NotificationSent' AND order_id = $1 ORDER BY created_at",
            uuid.UUID(order.order_id),
        )
        return [json.loads(bytes(r["body"])) for r in rows]


def _header(message: dict[str, Any], name: str) -> str | None:
    for key, value in message["headers"]:
        if key.lower() == name.lower():
            return str(value)
    return None


def header(message: dict[str, Any], name: str) -> str | None:
    """A header of a message as mail-fake stored it."""
    return _header(message, name)
