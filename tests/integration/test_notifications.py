"""The notification service end to end: orders through the real pipeline, e-mails over real SMTP (STARTTLS
and AUTH) to mail-fake, every service its own process on the real broker and databases.

One stack for the module (``notifications_support.notification_stack``). Each test uses addresses of its
own, so the mails another test caused never count; waits poll to a deadline.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import pytest

from devstack import Stack

from .conftest import customer_token
from .notifications_support import (
    QUEUE,
    SMTP_PASSWORD,
    Mail,
    crash_address,
    header,
    notification_stack,
    pause_marker,
)
from .provisioning_support import metric, spawnctl
from .rentals_support import MONTH
from .support import Api, BrokerProbe, eventually

pytestmark = pytest.mark.integration

GAME_PASSWORD = f"pw-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="module")
def mail_stack() -> Iterator[Stack]:
    with notification_stack() as stack:
        yield stack


@pytest.fixture
async def mail(mail_stack: Stack) -> AsyncIterator[Mail]:
    async with Api(mail_stack.config) as api:
        harness = Mail(mail_stack, api)
        await harness.reset_panel_faults()
        await harness.stripe_control("DELETE", "/deliveries/drop")
        await harness.stripe_control(
            "POST", "/billing/settings", {"subscription_action": "unpaid", "retry_days": [1, 2]}
        )
        try:
            yield harness
        finally:
            await harness.accept_everything()
            await harness.stripe_control("POST", "/deliveries/resume")
            await harness.aclose()


def _address(tag: str) -> str:
    return f"{tag}-{uuid.uuid4().hex[:8]}@example.test"


async def _consumed(mail: Mail, event_type: str) -> float:
    text = await mail.metrics(mail.config.url("notification-service"))
    return metric(text, "messages_consumed_total", event_type=event_type, outcome="ok")


async def test_one_order_to_created_gets_one_server_ready_email_in_its_locale_even_when_the_event_comes_twice(
    mail: Mail, mail_stack: Stack
) -> None:
    to = _address("de")
    order = await mail.order_for(
        to,
        locale="de",
        time_zone="Europe/Berlin",
        game_id="valheim",
        plan_id="standard",
        settings={"SERVER_PASS": GAME_PASSWORD},
        name="Jürgen <Test>",
    )
    await mail.pay(order)
    await mail.status(order, "CREATED")
    [ready] = await mail.wait_mails(to, "server_ready")
    assert ready["subject"].startswith("Ihr Server") and "ist bereit" in ready["subject"], ready["subject"]
    assert ready["text"].startswith("Hallo Jürgen <Test>,"), "greeted by the token's name"
    assert "Hallo Jürgen &lt;Test&gt;," in ready["html"], "the name escaped in the HTML part"
    assert header(ready, "Content-Language") == "de"
    assert ready["tls"] is True and ready["auth_login"] == "spawnpoint", "STARTTLS and AUTH, as in production"
    assert re.search(r"Verbinden mit: \S+:\d+", ready["text"]), ready["text"]
    (server,) = await mail.api.panel_servers(external_id=order.order_id)
    assert f"/server/{server['identifier']}" in ready["text"]
    assert f"/server/{server['identifier']}" in ready["html"]

    # the same ServerInstalled delivered again, straight onto the notification queue
    [installed] = await mail.provisioner_events(order, "ServerInstalled")
    before = await _consumed(mail, "ServerInstalled")
    probe = BrokerProbe(mail_stack.config.namespace)
    await probe.connect()
    try:
        await probe.publish_to_queue(
            QUEUE,
            json.dumps(installed).encode(),
            message_id=installed["event_id"],
            headers={"event_type": "ServerInstalled", "event_version": 1},
        )
    finally:
        await probe.close()

    async def redelivery_handled() -> bool | None:
        return True if await _consumed(mail, "ServerInstalled") > before else None

    await eventually(redelivery_handled, what="the duplicate ServerInstalled handled")
    await eventually(lambda: mail.sent_row(order, "server_ready"), what="the e-mail marked sent")
    assert len(await mail.mails_of_kind(to, "server_ready")) == 1
    sent = await mail.notifications_sent(order)
    assert [s["payload"]["kind"] for s in sent] == ["server_ready"]
    assert sent[0]["payload"]["message_id"] == ready["message_id"]

    async def on_trail() -> bool | None:
        return True if "NotificationSent" in await mail.trail(order) else None

    await eventually(on_trail, what="the e-mail on the order's trail")


async def test_killed_after_the_smtp_server_accepted_it_sends_at_most_one_more_copy_with_the_same_message_id(
    mail: Mail, mail_stack: Stack
) -> None:
    to = crash_address(mail_stack.config)
    marker = pause_marker(mail_stack.config)
    order = await mail.order_for(to)
    await mail.pay(order)

    async def paused() -> str | None:
        return marker.read_text() if marker.exists() and marker.read_text() else None

    message_id = await eventually(paused, timeout=60, what="the service paused after the SMTP server accepted")
    [first] = await mail.mails(to)
    assert first["message_id"] == message_id
    row = await mail.emails_row(order, "server_ready")
    assert row is not None and row["status"] == "sending", "accepted, not marked sent yet"

    mail_stack.kill("notification-service")
    mail_stack.restart("notification-service")
    await eventually(lambda: mail.sent_row(order, "server_ready"), timeout=60, what="sent after the restart")
    copies = await mail.mails(to)
    assert 1 <= len(copies) <= 2, copies
    assert {c["message_id"] for c in copies} == {message_id}, "a resend carries the same Message-ID"
    assert len(await mail.notifications_sent(order)) == 1


async def test_a_451_is_retried_and_the_email_delivered_once(mail: Mail) -> None:
    to = _address("busy")
    await mail.refuse(code=451, recipient=to, count=1, message="4.7.1 Greylisted, try again later")
    order = await mail.order_for(to)
    await mail.pay(order)
    await mail.wait_mails(to, "server_ready")
    row = await eventually(lambda: mail.sent_row(order, "server_ready"), what="marked sent")
    assert row["attempts"] == 2
    assert len(await mail.refused(to)) == 1
    assert len(await mail.mails(to)) == 1
    text = await mail.metrics(mail.config.url("notification-service"))
    assert metric(text, "notification_emails_failed_total", kind="server_ready", failure="transient") >= 1
    assert metric(text, "notification_emails_sent_total", kind="server_ready") >= 1
    assert "notification_queue_age_seconds " in text


async def test_a_550_is_dead_lettered_with_the_reply_and_replayed_with_spawnctl_after_the_address_is_fixed(
    mail: Mail, mail_stack: Stack
) -> None:
    wrong, right = _address("typo"), _address("fixed")
    await mail.refuse(code=550, recipient=wrong, count=None, message="5.1.1 No such mailbox here")
    order = await mail.order_for(wrong)
    await mail.pay(order)

    async def dead_lettered() -> dict[str, Any] | None:
        row = await mail.emails_row(order, "server_ready")
        return row if row is not None and row["status"] == "failed" else None

    row = await eventually(dead_lettered, timeout=60, what="the e-mail failed for good")
    assert "550" in row["last_error"] and "No such mailbox" in row["last_error"]
    namespace = mail_stack.config.namespace

    async def listed() -> dict[str, object] | None:
        shown = await spawnctl(namespace, "dlq", "list", "--queue", QUEUE, "--json")
        if shown.code != 0:
            return None
        for line in shown.stdout.splitlines():
            if order.order_id in line:
                found: dict[str, object] = json.loads(line)
                return found
        return None

    dead = await eventually(listed, timeout=30, what="the dead letter in spawnctl dlq list")
    assert dead["reason"] == "smtp_rejected" and "550" in str(dead["detail"]), dead
    assert await mail.mails(wrong) == []

    operator = _operator_token()
    shown = await mail.api.http.get(
        mail.api.url("notification-service", f"/operator/orders/{order.order_id}/emails"),
        headers=mail.api.auth(operator),
    )
    [failed] = shown.json()
    assert (failed["status"], failed["failure_class"]) == ("failed", "permanent") and "550" in failed["last_error"]
    fixed = await mail.api.http.put(
        mail.api.url("notification-service", f"/operator/orders/{order.order_id}/email"),
        headers=mail.api.auth(operator),
        json={"email": right},
    )
    assert fixed.status_code == 200, fixed.text
    replayed = await spawnctl(namespace, "dlq", "replay", "--queue", QUEUE, "--order-id", order.order_id)
    assert replayed.code == 0, replayed.stdout + replayed.stderr
    [delivered] = await mail.wait_mails(right, "server_ready")
    assert delivered["rcpt_tos"] == [right]
    assert await mail.mails(wrong) == []
    row = await eventually(lambda: mail.sent_row(order, "server_ready"), what="marked sent after the replay")
    assert row["recipient"] == right


async def test_a_failed_renewal_a_lapse_and_a_suspension_are_each_told_once_in_order(mail: Mail) -> None:
    order = await mail.monthly_rental()
    to = f"{order.user_id}@example.test"
    await mail.wait_mails(to, "server_ready")
    await mail.set_card(order, "pm_card_chargeCustomerFail")
    await mail.advance(order, MONTH)
    await mail.wait_mails(to, "payment_failed")
    await mail.advance(order, timedelta(days=2, hours=2))  # both retries fail: Stripe gives up
    await eventually(lambda: mail.rental(order, phase="lapsed"), timeout=60, what="lapsed")
    await mail.wait_mails(to, "server_suspended", timeout=60)
    await mail.wait_mails(to, "rental_lapsed")

    async def settled() -> bool | None:
        rows = await mail.sql(
            "notification-service",
            "SELECT status FROM messages WHERE order_id = $1 AND status <> 'sent'",
            uuid.UUID(order.order_id),
        )
        return None if rows else True

    await eventually(settled, what="every e-mail of the rental sent")
    received = await mail.mails(to)
    kinds = [header(m, "X-Spawnpoint-Kind") for m in received]
    ids = [m["message_id"] for m in received]
    assert len(set(ids)) == len(ids), "no e-mail twice"
    assert kinds[0] == "server_ready" and kinds.count("rental_lapsed") == 1 and kinds.count("server_suspended") == 1
    first_failed = kinds.index("payment_failed")
    assert first_failed < kinds.index("rental_lapsed") < kinds.index("server_suspended"), kinds
    [failed] = [m for m in received if header(m, "X-Spawnpoint-Kind") == "payment_failed"][:1]
    assert "try your card again" in failed["text"] or "keeps running" in failed["text"]


async def test_zz_no_log_line_or_email_carries_a_game_password_or_a_token(mail: Mail, mail_stack: Stack) -> None:
    # Wait until the notification service has nothing left in hand, so the scan sees everything it did.
    async def idle() -> bool | None:
        rows = await mail.sql("notification-service", "SELECT 1 FROM messages WHERE status IN ('pending','sending')")
        return True if not rows else None

    await eventually(idle, timeout=60, what="the notification service idle")
    secrets = [GAME_PASSWORD, SMTP_PASSWORD]
    tokens: list[str] = []
    messages = await mail.mails()
    assert messages, "the module sent e-mails"
    for message in messages:
        for secret in secrets:
            assert secret not in message["raw"], f"a secret in e-mail {message['subject']!r}"
        tokens.extend(re.findall(r"eyJ[\w-]+\.[\w-]+\.[\w-]+", message["raw"]))
    assert tokens == [], "a bearer token in an e-mail"
    logs = sorted(mail_stack.config.log_dir.glob("*.log"))
    assert any(p.name == "notification-service.log" for p in logs)
    for path in logs:
        text = path.read_text(errors="replace")
        for secret in secrets:
            assert secret not in text, f"a secret in {path.name}"
        assert not re.search(r"Bearer eyJ[\w-]+\.[\w-]+\.[\w-]+", text), f"a bearer token in {path.name}"


def _operator_token() -> str:
    return customer_token("operator-notifications", operator=True)
