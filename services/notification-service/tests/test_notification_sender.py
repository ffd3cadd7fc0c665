"""The intake and the sender with the in-memory unit of work, a fake mailer and panel: recorded once, sent
once, retried on a 4xx, dead-lettered on a 5xx and sent again to the corrected address on a replay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from notification_support import SECRET, Story

from notification_service.adapters.tables import MessageRow, MessageStatus
from notification_service.config import Settings
from notification_service.domain.delivery import classify
from notification_service.service_layer.intake import Intake, events_subscription
from notification_service.service_layer.sender import Sender
from notification_service.testing import FakeDirectory, FakeMailer, FakeNotificationUnitOfWork
from spawnpoint_contracts import Event, NotificationSent, OrderCreated, OrderCreatedPayload, RentalCause
from spawnpoint_kit.messaging.delivery import Delivery
from spawnpoint_kit.messaging.headers import DEAD_LETTER_DETAIL, DEAD_LETTER_REASON, REPLAY_COUNT
from spawnpoint_kit.messaging.topology import Topology

pytestmark = pytest.mark.unit


class World:
    def __init__(self, **settings: object) -> None:
        self.uow = FakeNotificationUnitOfWork()
        self.mailer = FakeMailer()
        self.settings = Settings(NOTIFICATION_RETRY_DELAYS="1,2", **settings)  # type: ignore[arg-type]
        self.sender = Sender(
            lambda: self.uow,
            mailer=self.mailer,
            directory=FakeDirectory(),
            settings=self.settings,
            topology=Topology("t."),
        )
        self.subscription = events_subscription(Intake(order_placed=False), lambda: self.uow)

    async def deliver(self, event: Event, *, replay: int = 0) -> None:
        headers = {REPLAY_COUNT: replay} if replay else {}
        await self.subscription.handle(event, Delivery.of(event, "t.notification-service.events", headers=headers))

    async def send_due(self) -> None:
        for row in self.uow.emails.rows.values():  # the clock of a test does not wait: make retries due
            row.next_attempt_at = min(row.next_attempt_at, datetime.now(UTC))
        await self.sender.step()

    def row(self) -> MessageRow:
        [row] = self.uow.emails.rows.values()
        return row


async def test_a_ready_server_is_told_once_even_when_the_event_arrives_twice() -> None:
    world, story = World(), Story(locale="de", time_zone="Europe/Berlin")
    await world.deliver(story.paid())
    installed = story.installed()
    await world.deliver(installed)
    await world.deliver(installed)
    await world.send_due()
    await world.send_due()
    [(to, message)] = world.mailer.sent
    assert to == "alice@example.test"
    assert message["Subject"] == "Ihr Server Alice world ist bereit"
    assert "10.0.0.5:25565" in message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert SECRET not in message.as_string()
    [sent] = world.uow.events(NotificationSent)
    assert (sent.payload.kind, sent.payload.message_id) == ("server_ready", message["Message-ID"])


async def test_a_4xx_is_retried_and_then_sent_with_the_same_message_id() -> None:
    world, story = World(), Story()
    await world.deliver(story.paid())
    await world.deliver(story.installed())
    world.mailer.answers.append(classify(451, "4.7.1 greylisted"))
    await world.send_due()
    first = world.row()
    assert (first.status, first.attempts) == (MessageStatus.PENDING, 1)
    assert "451" in (first.last_error or "")
    first_id = first.message_id
    await world.send_due()
    [(_, message)] = world.mailer.sent
    assert message["Message-ID"] == first_id
    again = world.row()
    assert (again.status, again.attempts) == (MessageStatus.SENT, 2)


async def test_retries_used_up_dead_letter_the_event() -> None:
    world, story = World(), Story()
    await world.deliver(story.paid())
    await world.deliver(story.installed())
    world.mailer.answers.extend([classify(None, "connection refused")] * 3)
    for _ in range(3):
        await world.send_due()
    [dead] = [m for m in world.uow.committed_messages if m.queue == "t.notification-service.events.dlq"]
    assert dead.headers[DEAD_LETTER_REASON] == "smtp_retries_exhausted"
    assert world.row().status == MessageStatus.FAILED


async def test_a_5xx_is_dead_lettered_with_the_reply_and_a_replay_sends_to_the_corrected_address() -> None:
    world, story = World(), Story(email="alcie@example.test")
    await world.deliver(story.paid())
    installed = story.installed()
    await world.deliver(installed)
    world.mailer.answers.append(classify(550, "5.1.1 no such mailbox"))
    await world.send_due()
    [dead] = [m for m in world.uow.committed_messages if m.queue == "t.notification-service.events.dlq"]
    assert dead.headers[DEAD_LETTER_REASON] == "smtp_rejected" and "550 5.1.1" in dead.headers[DEAD_LETTER_DETAIL]
    assert world.row().status == MessageStatus.FAILED
    await world.deliver(installed)  # an ordinary redelivery changes nothing
    await world.send_due()
    assert world.mailer.sent == []

    contact = world.uow.contacts.rows[story.order_id]
    contact.email, contact.email_corrected_at = "alice@example.test", datetime.now(UTC)
    await world.deliver(installed, replay=1)
    await world.send_due()
    [(to, _)] = world.mailer.sent
    assert to == "alice@example.test"
    await world.deliver(story.paid())  # a late OrderPaid does not undo the operator's correction
    assert world.uow.contacts.rows[story.order_id].email == "alice@example.test"


async def test_notices_of_one_order_go_out_in_the_order_things_happened() -> None:
    world, story = World(), Story()
    await world.deliver(story.paid())
    ready, failed = story.installed(), story.rental(RentalCause.PAYMENT_FAILED)
    world.mailer.answers.append(classify(451, "busy"))
    await world.deliver(failed)
    await world.deliver(ready)  # arrives later, happened earlier
    await world.send_due()  # the older one (ready) is refused: the newer waits for it
    assert world.mailer.sent == []
    await world.send_due()
    await world.send_due()
    assert [m["X-Spawnpoint-Kind"] for _, m in world.mailer.sent] == ["server_ready", "payment_failed"]


async def test_an_address_over_its_hourly_limit_waits_and_nothing_is_dropped() -> None:
    world, story = World(NOTIFICATION_RATE_LIMIT_PER_HOUR=1), Story()
    await world.deliver(story.paid())
    await world.deliver(story.installed())
    await world.deliver(story.rental(RentalCause.PAYMENT_FAILED))
    await world.send_due()
    await world.send_due()
    assert len(world.mailer.sent) == 1
    waiting = [r for r in world.uow.emails.rows.values() if r.status == MessageStatus.PENDING]
    assert len(waiting) == 1 and waiting[0].next_attempt_at > datetime.now(UTC) + timedelta(seconds=30)


async def test_an_optional_email_the_customer_turned_off_is_suppressed_a_required_one_never() -> None:
    world, story = World(), Story()
    await world.uow.preferences.set_optional_emails("alice", False)
    await world.deliver(story.paid())
    await world.deliver(story.rental(RentalCause.PAYMENT_FAILED))
    await world.deliver(story.rental(RentalCause.RECOVERED, version=3))
    for _ in range(3):
        await world.send_due()
    assert [m["X-Spawnpoint-Kind"] for _, m in world.mailer.sent] == ["payment_failed"]
    statuses = sorted(r.status for r in world.uow.emails.rows.values())
    assert statuses == [MessageStatus.SENT, MessageStatus.SUPPRESSED]


async def test_the_stored_copy_of_an_event_has_its_secret_settings_redacted() -> None:
    world, story = World(), Story()
    world.subscription = events_subscription(Intake(order_placed=True), lambda: world.uow)
    created = OrderCreated(
        order_id=story.order_id,
        correlation_id="c",
        producer="order-service",
        payload=OrderCreatedPayload(order=story.snapshot()),
    )
    await world.deliver(created)
    [row] = world.uow.emails.rows.values()
    assert SECRET.encode() not in row.event_body and b"[redacted]" in row.event_body


async def test_an_email_that_cannot_be_rendered_is_dead_lettered_not_retried_for_ever() -> None:
    world, story = World(), Story()
    await world.deliver(story.paid())
    await world.deliver(story.installed())
    next(iter(world.uow.emails.rows.values())).kind = "no_such_template"
    await world.send_due()
    [dead] = [m for m in world.uow.committed_messages if m.queue == "t.notification-service.events.dlq"]
    assert dead.headers[DEAD_LETTER_REASON] == "render_failed"
    assert world.row().status == MessageStatus.FAILED and world.mailer.sent == []
