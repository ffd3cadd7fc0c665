"""The greeting: customers are greeted by the display name their order carries ("Hello Alex," / "Hallo
Alex,"), with the plain greeting when it has none, and a hostile name is text, never markup, in the HTML
part. The contact keeps the name from the order's snapshot (PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from notification_support import Story

from notification_service.domain.notices import Kind
from notification_service.domain.rendering import _environment, render
from notification_service.service_layer.unit_of_work import SqlNotificationUnitOfWork

CONTACT = {"order_id": "o-1", "server_name": "Alice world", "game_name": "Valheim", "plan_name": "Standard"}
READY = {**CONTACT, "connect_address": "10.0.0.5:25565", "link": "https://panel.test/server/abcd1234"}
HELLO = {"en": "Hello", "de": "Hallo"}
CUSTOMER_KINDS = [k.value for k in Kind if k != Kind.DISPUTE_OPENED]
"""Every kind a customer reads (the dispute notice goes to the operator and greets nobody)."""
EVERY_FACT: dict[str, Any] = {
    **READY,
    "amount": 1500,
    "currency": "eur",
    "reason": "provisioning_failed",
    "identifier": "abcd1234",
    "phase": "lapsed",
    "version": 3,
    **dict.fromkeys(("paid_through", "next_payment_attempt", "grace_until"), "2026-12-03T10:00:00+00:00"),
    **dict.fromkeys(("ends_at", "terminate_at"), "2026-12-30T10:00:00+00:00"),
}


@pytest.mark.unit
@pytest.mark.parametrize("locale", ["en", "de"])
def test_the_server_ready_email_greets_the_customer_by_name_in_both_parts(locale: str) -> None:
    mail = render("server_ready", locale=locale, time_zone="Europe/Berlin", facts={**READY, "customer_name": "Alex"})
    assert mail.text.startswith(f"{HELLO[locale]} Alex,\n"), mail.text
    assert f">{HELLO[locale]} Alex,</p>" in mail.html


@pytest.mark.unit
@pytest.mark.parametrize("locale", ["en", "de"])
@pytest.mark.parametrize("facts", [READY, {**READY, "customer_name": None}, {**READY, "customer_name": ""}])
def test_without_a_name_the_greeting_is_the_plain_one(locale: str, facts: dict[str, Any]) -> None:
    mail = render("server_ready", locale=locale, time_zone="UTC", facts=facts)
    assert mail.text.startswith(f"{HELLO[locale]},\n"), mail.text
    assert f">{HELLO[locale]},</p>" in mail.html


@pytest.mark.unit
@pytest.mark.parametrize("kind", CUSTOMER_KINDS)
@pytest.mark.parametrize("locale", ["en", "de"])
def test_every_customer_email_greets_by_name(kind: str, locale: str) -> None:
    mail = render(kind, locale=locale, time_zone="Europe/Berlin", facts={**EVERY_FACT, "customer_name": "Alex"})
    assert mail.text.startswith(f"{HELLO[locale]} Alex,\n"), mail.text


@pytest.mark.unit
@pytest.mark.parametrize("locale", ["en", "de"])
def test_a_hostile_name_is_escaped_in_the_html_part(locale: str) -> None:
    hostile = '<script>alert("x")</script><a href="https://evil.test">Bob & co</a>'
    mail = render("server_ready", locale=locale, time_zone="UTC", facts={**READY, "customer_name": hostile})
    assert "<script>" not in mail.html and 'evil.test">' not in mail.html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in mail.html and "Bob &amp; co" in mail.html
    assert mail.text.startswith(f"{HELLO[locale]} {hostile},\n"), "plain text shows the name as it is"


@pytest.mark.unit
def test_autoescape_is_on_for_html_templates_and_off_for_text() -> None:
    autoescape = _environment().autoescape
    assert callable(autoescape)
    assert autoescape("layout.html") is True
    assert autoescape("en/server_ready.txt") is False


@pytest.mark.component
async def test_the_contact_keeps_the_name_even_when_a_later_snapshot_has_none(
    sql_unit_of_work: Callable[[], SqlNotificationUnitOfWork],
) -> None:
    story = Story()
    async with sql_unit_of_work() as uow:
        await uow.contacts.remember(story.snapshot().model_copy(update={"customer_name": "Alex"}))
        await uow.commit()
    async with sql_unit_of_work() as uow:
        await uow.contacts.remember(story.snapshot())  # an OrderPaid from a producer that does not know names
        await uow.commit()
    async with sql_unit_of_work() as uow:
        contact = await uow.contacts.get(story.order_id)
        assert contact is not None and contact.customer_name == "Alex"
    unnamed = Story()
    async with sql_unit_of_work() as uow:
        await uow.contacts.remember(unnamed.snapshot())
        await uow.commit()
    async with sql_unit_of_work() as uow:
        contact = await uow.contacts.get(unnamed.order_id)
        assert contact is not None and contact.customer_name is None
