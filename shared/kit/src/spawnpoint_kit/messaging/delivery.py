"""One delivery of a message, as handlers and units of work see it, and the dead-letter decision.

Kept apart from ``consumer.py`` (which needs FastStream) so that domain-free service code, the in-memory
unit of work and unit tests can use them without a broker library.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from spawnpoint_contracts import Event

from .headers import DELIVERY_COUNT, REPLAY_COUNT


class DeadLetter(Exception):
    """A message that can never be handled as it is: dead-letter it now, with a reason."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def _count(value: object) -> int:
    return int(value) if isinstance(value, int | str) and str(value).isdigit() else 0


@dataclass(frozen=True)
class Delivery:
    """One delivery of a message: its bytes and its AMQP properties, untrusted as they arrived."""

    queue: str
    body: bytes
    headers: dict[str, Any]
    message_id: str | None
    correlation_id: str | None
    routing_key: str
    redelivered: bool

    @classmethod
    def of(
        cls, event: Event, queue: str, *, headers: dict[str, Any] | None = None, redelivered: bool = False
    ) -> Delivery:
        """``event`` as it arrives on ``queue`` once the relay has published it (the same id, correlation id,
        routing key and type headers), plus ``headers``: for handling an event in process (status-service's
        rebuild) and for handler tests."""
        return cls(
            queue=queue,
            body=event.to_json_bytes(),
            headers={"event_type": event.event_type, "event_version": event.event_version, **(headers or {})},
            message_id=str(event.event_id),
            correlation_id=event.correlation_id,
            routing_key=event.routing_key,
            redelivered=redelivered,
        )

    @property
    def delivery_count(self) -> int:
        """How many times the broker delivered this message before (quorum queues count them)."""
        return _count(self.headers.get(DELIVERY_COUNT, 0))

    @property
    def replay_count(self) -> int:
        return _count(self.headers.get(REPLAY_COUNT, 0))

    @property
    def dedup_key(self) -> str:
        """Inbox key of this message: its id, or a hash of the body when it has none."""
        return self.message_id or "sha256:" + hashlib.sha256(self.body).hexdigest()
