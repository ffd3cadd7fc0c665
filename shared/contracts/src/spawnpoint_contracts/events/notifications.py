"""Facts about what the customer was told: an e-mail the SMTP server accepted."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from ..envelope import Event, WireModel


class NotificationSentPayload(WireModel):
    kind: str = Field(
        min_length=1, max_length=64, description="What the e-mail said: server_ready, payment_failed, suspended…"
    )
    message_id: str = Field(
        min_length=3, max_length=300, description="The e-mail's Message-ID header (the same on every resend)."
    )
    recipient: Literal["customer", "operator"] = Field(description="Who it was for (the address is not carried).")
    locale: str = Field(min_length=2, max_length=16, description="The language it was written in.")
    attempts: int = Field(ge=1, description="SMTP attempts it took, the accepted one included.")
    caused_by: str = Field(
        min_length=1, max_length=64, description="The event type that made it (ServerInstalled, RentalChanged…)."
    )


class NotificationSent(Event):
    """An e-mail about the order was accepted by the SMTP server (emitted once per e-mail)."""

    routing_key: ClassVar[str] = "notification.sent.v1"
    event_type: Literal["NotificationSent"] = "NotificationSent"
    event_version: Literal[1] = 1
    payload: NotificationSentPayload
