"""The envelope every Spawnpoint event travels in.

An event is a past-tense fact about one order. The envelope carries what every consumer needs to
handle it safely without knowing the payload: a unique id to deduplicate on, the type and version to
route and parse, when it happened, which order it concerns, and the correlation and causation ids that
let an operator follow one customer's order across four services.

Consumers ignore unknown fields (``extra="ignore"``) so a producer can add optional fields within a
version without breaking anyone; a breaking change is a new ``event_version`` and a new routing key.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator


def utc_now() -> datetime:
    """The current time as an aware UTC datetime (events never carry naive times)."""
    return datetime.now(UTC)


class WireModel(BaseModel):
    """Base for every model that crosses a process boundary: tolerant reader, immutable value."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class Event(WireModel):
    """Fields shared by every event. Subclasses pin ``event_type``, ``event_version`` and ``payload``."""

    routing_key: ClassVar[str]

    event_id: uuid.UUID = Field(default_factory=uuid.uuid4, description="Unique per event; the dedup key.")
    event_type: str
    event_version: int
    occurred_at: AwareDatetime = Field(default_factory=utc_now, description="When the fact happened (UTC).")
    order_id: uuid.UUID = Field(description="The order this fact is about.")
    correlation_id: str = Field(
        min_length=1,
        max_length=200,
        pattern=r"^[!-~]+$",
        description="Shared by every event and request of one flow: 1 to 200 printable ASCII characters without "
        "spaces, so it always fits AMQP's correlation_id (255 bytes).",
    )
    causation_id: uuid.UUID | None = Field(
        default=None, description="The event_id of the event that caused this one; null for a request."
    )
    producer: str = Field(min_length=1, max_length=100, description="The service that emitted it.")

    @field_validator("occurred_at")
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)

    @classmethod
    def caused_by(cls, cause: Event, *, producer: str, **fields: Any) -> Self:
        """Build an event that follows from ``cause``: same order and correlation, causation = cause."""
        fields.setdefault("order_id", cause.order_id)
        return cls(
            correlation_id=cause.correlation_id,
            causation_id=cause.event_id,
            producer=producer,
            **fields,
        )

    def to_json_bytes(self) -> bytes:
        """The exact bytes that go on the wire."""
        return self.model_dump_json().encode()
