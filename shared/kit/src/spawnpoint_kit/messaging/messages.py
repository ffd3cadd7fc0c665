"""Messages addressed to one queue (a delayed retry, a dead-letter copy), as a unit of work collects them.

Events go to the topic exchange and every consumer bound to their routing key; a ``QueueMessage`` goes
through the default exchange to exactly one queue. Both are staged in the outbox at commit, so they are
published only if the transaction that decided them commits.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from .delivery import Delivery
from .headers import (
    BROKER_ANNOTATIONS,
    DEAD_LETTER_AT,
    DEAD_LETTER_DETAIL,
    DEAD_LETTER_QUEUE,
    DEAD_LETTER_REASON,
    DEAD_LETTER_ROUTING_KEY,
    DROPPED_HEADERS,
)
from .wire import publishable_headers, publishable_token


@dataclass(frozen=True)
class QueueMessage:
    """A message for one queue. ``message_id`` is the original message's, so consumers still recognise it."""

    queue: str
    body: bytes
    message_id: uuid.UUID
    message_type: str
    headers: dict[str, Any] = field(default_factory=dict)
    correlation_id: str | None = None
    order_id: uuid.UUID | None = None
    delay: timedelta | None = None


def dead_letter_copy(
    delivery: Delivery, *, reason: str, detail: str, extra_headers: dict[str, Any] | None = None
) -> QueueMessage:
    """The copy of ``delivery`` for ``<queue>.dlq``, with the reason in its headers.

    The copy keeps the body, the ``message_id`` and the original headers, so an operator's replay sends
    back exactly what arrived; the broker's annotations of earlier deaths are dropped, and so are headers that
    could not go on the wire again (anyone may have published the original): their names are kept."""
    headers, dropped = publishable_headers(
        {k: v for k, v in delivery.headers.items() if not k.startswith(BROKER_ANNOTATIONS)}
    )
    if dropped:
        headers[DROPPED_HEADERS] = ",".join(dropped)[:1000]
    headers.update(
        {
            DEAD_LETTER_REASON: reason,
            DEAD_LETTER_DETAIL: detail[:2000],
            DEAD_LETTER_QUEUE: delivery.queue,
            DEAD_LETTER_ROUTING_KEY: delivery.routing_key,
            DEAD_LETTER_AT: datetime.now(UTC).isoformat(),
            **(extra_headers or {}),
        }
    )
    message_id = _as_uuid(delivery.message_id) or uuid.uuid5(uuid.NAMESPACE_OID, delivery.dedup_key)
    return QueueMessage(
        queue=f"{delivery.queue}.dlq",
        body=delivery.body,
        message_id=message_id,
        message_type="dead-letter",
        headers=headers,
        correlation_id=publishable_token(delivery.correlation_id),
        order_id=_order_id_of(delivery.body),
    )


def _as_uuid(value: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(value) if value else None
    except ValueError:
        return None


def _order_id_of(body: bytes) -> uuid.UUID | None:
    try:
        data = json.loads(body)
        return uuid.UUID(str(data["order_id"])) if isinstance(data, dict) and "order_id" in data else None
    except Exception:  # whatever the body is, dead-lettering it must not fail
        return None
