"""Event creation and the event log.

An event's ``data.object`` is a snapshot of the object when the event happened, not a live view: it is
serialized once, pretty-printed with a 2-space indent as Stripe's deliveries are, and those exact bytes
are sent on every attempt. Receivers that re-serialize before verifying the signature therefore fail
here as they would against Stripe.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from stripe_fake.config import API_VERSION
from stripe_fake.ids import new_id
from stripe_fake.models import Event


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """The API request that caused an event; both fields are null for automatic events."""

    id: str | None = None
    idempotency_key: str | None = None


AUTOMATIC = RequestInfo()


def serialize(payload: dict[str, Any]) -> bytes:
    """Stripe's delivery format: indented JSON, UTF-8, non-ASCII characters kept as they are."""
    return json.dumps(payload, indent=2, ensure_ascii=False).encode("utf-8")


class EventLog:
    """Every event emitted since the last reset, in creation order."""

    def __init__(self) -> None:
        self._events: dict[str, Event] = {}
        self._seq = 0

    def create(
        self,
        event_type: str,
        obj: dict[str, Any],
        *,
        created: int,
        request: RequestInfo,
        pending_endpoints: set[str],
        order_id: str | None,
        previous_attributes: dict[str, Any] | None = None,
    ) -> Event:
        """Build, serialize and record an event (``previous_attributes`` only for ``*.updated``)."""
        self._seq += 1
        event_id = new_id("evt_1", 23)
        data: dict[str, Any] = {"object": obj}
        if previous_attributes is not None:
            data["previous_attributes"] = previous_attributes
        payload: dict[str, Any] = {
            "id": event_id,
            "object": "event",
            "api_version": API_VERSION,
            "created": created,
            "data": data,
            "livemode": False,
            "pending_webhooks": len(pending_endpoints),
            "request": {"id": request.id, "idempotency_key": request.idempotency_key},
            "type": event_type,
        }
        object_id = obj.get("id")
        event = Event(
            seq=self._seq,
            id=event_id,
            type=event_type,
            created=created,
            payload=payload,
            body=serialize(payload),
            object_id=object_id if isinstance(object_id, str) else None,
            order_id=order_id,
            pending_endpoints=set(pending_endpoints),
        )
        self._events[event_id] = event
        return event

    def get(self, event_id: str) -> Event | None:
        """One event by id."""
        return self._events.get(event_id)

    def __iter__(self) -> Iterator[Event]:
        return iter(self._events.values())

    def __len__(self) -> int:
        return len(self._events)

    def clear(self) -> None:
        """Forget every event."""
        self._events.clear()


class Emitter(Protocol):
    """Something that emits events (the fake itself): records them and hands them to delivery.

    ``created`` defaults to the fake clock's now; events about objects on a test clock pass the
    clock's simulated time instead.
    """

    def __call__(
        self,
        event_type: str,
        obj: dict[str, Any],
        *,
        request: RequestInfo = AUTOMATIC,
        order_id: str | None = None,
        created: int | None = None,
        previous_attributes: dict[str, Any] | None = None,
    ) -> Event: ...
