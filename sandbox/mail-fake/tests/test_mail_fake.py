"""mail-fake as a client sees it: a real SMTP server (STARTTLS, AUTH) that keeps what it accepts, shows
it on its JSON API and page, and refuses on a test's request (451 then accept; 550 for one address)."""

from __future__ import annotations

import socket
import ssl
from collections.abc import AsyncIterator
from email.message import EmailMessage

import aiosmtplib
import httpx
import pytest

from mail_fake.app import create_app

pytestmark = pytest.mark.component


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
async def fake() -> AsyncIterator[tuple[httpx.AsyncClient, int]]:
    port = _free_port()
    app = create_app(smtp_host="127.0.0.1", smtp_port=port)
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://fake") as c:
        yield c, port


def _message(to: str, subject: str = "Hello") -> EmailMessage:
    message = EmailMessage()
    message["From"] = "spawnpoint@example.test"
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = f"<{subject.lower().replace(' ', '-')}@example.test>"
    message.set_content("plain words")
    message.add_alternative("<p>html words</p>", subtype="html")
    return message


async def _send(port: int, message: EmailMessage, **options: object) -> None:
    tls = ssl.create_default_context()
    tls.check_hostname, tls.verify_mode = False, ssl.CERT_NONE
    await aiosmtplib.send(message, hostname="127.0.0.1", port=port, tls_context=tls, timeout=10, **options)  # type: ignore[arg-type]


async def test_it_keeps_what_it_accepts_over_starttls_and_auth(fake: tuple[httpx.AsyncClient, int]) -> None:
    client, port = fake
    assert (await client.get("/_fake/health")).json()["status"] == "ok"
    await _send(port, _message("alice@example.test"), start_tls=True, username="user", password="pass-word")
    await _send(port, _message("bob@example.test", "Other"), start_tls=False)
    [alice] = (await client.get("/_fake/messages", params={"to": "alice@example.test"})).json()["messages"]
    assert (alice["tls"], alice["auth_login"], alice["message_id"]) == (True, "user", "<hello@example.test>")
    assert alice["text"].strip() == "plain words" and "html words" in alice["html"]
    assert "pass-word" not in str(alice), "the password is never kept"
    page = (await client.get("/")).text
    assert "Hello" in page and "Other" in page
    assert (await client.delete("/_fake/messages")).json() == {"deleted": 2}
    assert (await client.get("/_fake/messages")).json()["messages"] == []


async def test_a_451_is_answered_once_then_the_message_is_accepted(fake: tuple[httpx.AsyncClient, int]) -> None:
    client, port = fake
    await client.post("/_fake/refusals", json={"code": 451, "count": 1})
    with pytest.raises(aiosmtplib.SMTPDataError) as refused:
        await _send(port, _message("alice@example.test"))
    assert refused.value.code == 451
    await _send(port, _message("alice@example.test"))
    assert len((await client.get("/_fake/messages")).json()["messages"]) == 1
    assert [r["reply"][:3] for r in (await client.get("/_fake/refusals")).json()["refused"]] == ["451"]


async def test_a_550_refuses_one_recipient_until_told_otherwise(fake: tuple[httpx.AsyncClient, int]) -> None:
    client, port = fake
    await client.post(
        "/_fake/refusals", json={"code": 550, "count": None, "recipient": "typo@example.test", "message": "5.1.1 nope"}
    )
    for _ in range(2):
        with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as refused:
            await _send(port, _message("typo@example.test"))
        assert refused.value.recipients[0].code == 550
    await _send(port, _message("alice@example.test"))
    await client.delete("/_fake/refusals")
    await _send(port, _message("typo@example.test", "Later"))
    recipients = [m["rcpt_tos"] for m in (await client.get("/_fake/messages")).json()["messages"]]
    assert recipients == [["alice@example.test"], ["typo@example.test"]]


async def test_a_bad_refusal_is_a_clear_422(fake: tuple[httpx.AsyncClient, int]) -> None:
    client, _ = fake
    response = await client.post("/_fake/refusals", json={"code": 250})
    assert response.status_code == 422
