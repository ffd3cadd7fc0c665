"""An e-mail the notification service got accepted is on the order's history: one ``email_sent`` entry in
the customer's timeline (never one sent to the operator), its kind and Message-ID in the operator's trail."""

from __future__ import annotations

from typing import Literal

import pytest
from status_service_support import OrderStory

from spawnpoint_contracts import NotificationSent, NotificationSentPayload
from status_service.domain.timeline import customer_timeline, operator_summary

pytestmark = pytest.mark.unit


def _sent(story: OrderStory, recipient: Literal["customer", "operator"]) -> NotificationSent:
    return NotificationSent(
        order_id=story.order_id,
        correlation_id=story.correlation_id,
        producer="notification-service",
        payload=NotificationSentPayload(
            kind="server_ready",
            message_id="<abc@spawnpoint.test>",
            recipient=recipient,
            locale="de",
            attempts=2,
            caused_by="ServerInstalled",
        ),
    )


def test_an_email_sent_to_the_customer_is_one_entry_of_their_timeline() -> None:
    story = OrderStory()
    entries = customer_timeline([story.created(), _sent(story, "customer"), _sent(story, "operator")])
    assert [e.code for e in entries] == ["order_placed", "email_sent"]
    assert entries[-1].title == "E-mail sent"


def test_the_operator_trail_names_the_kind_and_the_message_id() -> None:
    line = operator_summary(_sent(OrderStory(), "customer"))
    assert "server_ready" in line and "<abc@spawnpoint.test>" in line and "2 attempt" in line
