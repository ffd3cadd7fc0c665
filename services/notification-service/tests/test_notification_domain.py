"""The pure rules: which events make which e-mails, their ids, how SMTP answers are classified, and the
templates in both locales (money in the currency's format, dates in the customer's time zone)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from notification_support import SECRET, Story

from notification_service.domain.delivery import (
    FailureClass,
    classify,
    message_id_header,
    message_key,
    parse_delays,
    retry_delay,
)
from notification_service.domain.notices import OPTIONAL, Kind, Role, notices_for
from notification_service.domain.rendering import money, render, supported_locale
from spawnpoint_contracts import OrderCreated, OrderCreatedPayload, RentalCause, RentalPhase

pytestmark = pytest.mark.unit

CONTACT = {"order_id": "o-1", "server_name": "Alice world", "game_name": "Valheim", "plan_name": "Standard"}


def test_the_row_key_is_one_per_event_kind_and_recipient() -> None:
    event = uuid.uuid4()
    assert message_key(event, "server_ready", "customer") == message_key(event, "server_ready", "customer")
    assert message_key(event, "server_ready", "customer") != message_key(event, "server_ready", "operator")
    assert message_key(event, "server_ready", "customer") != message_key(uuid.uuid4(), "server_ready", "customer")


def test_the_message_id_is_derived_from_event_kind_and_address() -> None:
    event = uuid.uuid4()
    first = message_id_header(event, "server_ready", "Alice@Example.test", "mail.spawnpoint.test")
    assert first == message_id_header(event, "server_ready", "alice@example.test ", "mail.spawnpoint.test")
    assert first.startswith("<") and first.endswith("@mail.spawnpoint.test>")
    assert first != message_id_header(event, "server_ready", "bob@example.test", "mail.spawnpoint.test")
    assert first != message_id_header(event, "payment_failed", "alice@example.test", "mail.spawnpoint.test")


@pytest.mark.parametrize(
    ("code", "failure"),
    [(421, FailureClass.TRANSIENT), (451, FailureClass.TRANSIENT), (452, FailureClass.TRANSIENT),
     (550, FailureClass.PERMANENT), (553, FailureClass.PERMANENT), (None, FailureClass.CONNECTION)],
)  # fmt: skip
def test_smtp_answers_are_classified(code: int | None, failure: FailureClass) -> None:
    classified = classify(code, "  5.1.1   no such\r\n mailbox ")
    assert classified.failure == failure
    assert classified.retryable == (failure != FailureClass.PERMANENT)
    assert "no such mailbox" in classified.describe()


def test_retries_follow_the_configured_delays_then_stop() -> None:
    delays = parse_delays("1, 5,30")
    assert [retry_delay(delays, n) for n in (1, 2, 3, 4)] == [
        timedelta(seconds=1),
        timedelta(seconds=5),
        timedelta(seconds=30),
        None,
    ]
    with pytest.raises(ValueError, match="NOTIFICATION_RETRY_DELAYS"):
        parse_delays("soon")
    with pytest.raises(ValueError, match="positive"):
        parse_delays("0")


def test_events_map_to_notices_for_the_right_recipient() -> None:
    story = Story()
    assert [n.kind for n in notices_for(story.installed())] == [Kind.SERVER_READY]
    assert notices_for(story.paid()) == []
    assert [n.kind for n in notices_for(story.rental(RentalCause.PAYMENT_FAILED))] == [Kind.PAYMENT_FAILED]
    assert [n.kind for n in notices_for(story.rental(RentalCause.LAPSED, RentalPhase.LAPSED))] == [Kind.RENTAL_LAPSED]
    assert notices_for(story.rental(RentalCause.RENEWED, RentalPhase.ACTIVE)) == []
    [dispute] = notices_for(story.rental(RentalCause.DISPUTE_OPENED, RentalPhase.LAPSED))
    assert (dispute.kind, dispute.role, dispute.facts["dispute"]) == (Kind.DISPUTE_OPENED, Role.OPERATOR, "dp_1")
    created = OrderCreated(
        order_id=story.order_id,
        correlation_id="c",
        producer="order-service",
        payload=OrderCreatedPayload(order=story.snapshot()),
    )
    assert notices_for(created) == []
    assert [n.kind for n in notices_for(created, order_placed=True)] == [Kind.ORDER_PLACED]


def test_payment_and_suspension_notices_can_never_be_turned_off() -> None:
    for required in (Kind.PAYMENT_FAILED, Kind.RENTAL_LAPSED, Kind.SERVER_SUSPENDED, Kind.TERMINATION_WARNING):
        assert required not in OPTIONAL


def test_no_notice_carries_a_setting_or_its_secret_value() -> None:
    story = Story()
    for event in (story.paid(), story.installed(), story.rental(RentalCause.PAYMENT_FAILED)):
        for notice in notices_for(event, order_placed=True):
            assert SECRET not in repr(notice.facts)


def test_money_is_written_in_the_locales_currency_format() -> None:
    assert money(1500, "eur", "de") == "15,00\xa0€"
    assert money(1500, "eur", "en") == "€15.00"
    assert money(500, "jpy", "en") == "¥500"


def test_the_server_ready_email_in_german_with_the_connect_address_and_panel_link() -> None:
    mail = render(
        "server_ready",
        locale="de",
        time_zone="Europe/Berlin",
        facts={**CONTACT, "connect_address": "10.0.0.5:25565", "link": "https://panel.test/server/abcd1234"},
    )
    assert mail.subject == "Ihr Server Alice world ist bereit"
    assert "Verbinden mit: 10.0.0.5:25565" in mail.text
    assert (
        "https://panel.test/server/abcd1234" in mail.text and 'href="https://panel.test/server/abcd1234"' in mail.html
    )
    assert mail.html.startswith("<!doctype html>") and 'lang="de"' in mail.html


def test_dates_are_shown_in_the_customers_time_zone_and_words() -> None:
    facts = {**CONTACT, "amount": 1500, "currency": "eur", "next_payment_attempt": "2026-12-03T10:00:00+00:00"}
    german = render("payment_failed", locale="de", time_zone="Europe/Berlin", facts={**facts, "grace_until": None})
    assert "3. Dezember 2026, 11:00 MEZ" in german.text and "15,00\xa0€" in german.text
    english = render("payment_failed", locale="en", time_zone="America/New_York", facts={**facts, "grace_until": None})
    assert "December 3, 2026, 5:00\u202fAM EST" in english.text


def test_html_escapes_what_the_customer_chose() -> None:
    mail = render("server_unsuspended", locale="en", time_zone="UTC", facts={**CONTACT, "server_name": "<b>x</b>"})
    assert "<b>x</b>" not in mail.html and "&lt;b&gt;x&lt;/b&gt;" in mail.html


def test_an_unknown_locale_falls_back_to_english() -> None:
    assert supported_locale("de-AT") == "de"
    assert supported_locale("fr") == "en"
    assert render("server_terminated", locale="fr", time_zone="Nowhere/Land", facts=CONTACT).locale == "en"


@pytest.mark.parametrize("kind", [k.value for k in Kind])
@pytest.mark.parametrize("locale", ["en", "de"])
def test_every_kind_renders_in_every_locale(kind: str, locale: str) -> None:
    facts = {
        **CONTACT,
        "amount": 1500,
        "currency": "eur",
        "reason": "provisioning_failed",
        "connect_address": "10.0.0.5:25565",
        "link": "https://panel.test/server/x",
        "identifier": "x",
        "phase": "lapsed",
        "version": 3,
        "dispute": "dp_1",
        **dict.fromkeys(("paid_through", "next_payment_attempt", "grace_until"), "2026-12-03T10:00:00+00:00"),
        **dict.fromkeys(("ends_at", "terminate_at"), "2026-12-30T10:00:00+00:00"),
    }
    mail = render(kind, locale=locale, time_zone="Europe/Berlin", facts=facts)
    assert (mail.subject and "Alice world" in mail.text + mail.subject) or "o-1" in mail.subject
    assert mail.text.strip() and "</html>" in mail.html
