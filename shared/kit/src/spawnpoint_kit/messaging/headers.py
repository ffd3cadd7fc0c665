"""AMQP header names Spawnpoint writes and reads, in one place.

Imported by the consumer (which writes the dead-letter annotations), the outbox staging of dead-letter
copies, the provisioner's retries and ``spawnctl dlq`` (which reads them and strips them on replay). This
module imports nothing, so the operator CLI loads it without FastStream or SQLAlchemy.
"""

from __future__ import annotations

DEAD_LETTER_REASON = "x-spawnpoint-reason"
"""Why the message was dead-lettered (a reason code such as ``malformed_message`` or ``no_capacity``)."""
DEAD_LETTER_DETAIL = "x-spawnpoint-detail"
"""A human sentence with the detail (at most 2,000 characters)."""
DEAD_LETTER_QUEUE = "x-spawnpoint-queue"
"""The work queue the message was taken from: where a replay sends it back."""
DEAD_LETTER_AT = "x-spawnpoint-dead-lettered-at"
DEAD_LETTER_ROUTING_KEY = "x-spawnpoint-routing-key"
DROPPED_HEADERS = "x-spawnpoint-dropped-headers"
"""Names of the original's headers a dead-letter copy could not carry (over the limits, NUL, odd types)."""
FIRST_FAILED_AT = "x-spawnpoint-first-failed-at"
"""Kept across replays: when the message first failed."""
LAST_REASON = "x-spawnpoint-last-reason"
"""Kept across replays: the reason of the previous dead-lettering."""
OUR_PREFIX = "x-spawnpoint-"
"""Every annotation of ours starts with this; a replay removes them so a new failure is annotated afresh."""

FORCE_DELETE = "x-spawnpoint-force-delete"
"""Set by an operator's replay (``spawnctl dlq replay --force-delete``): a termination the panel refused
(Wings unreachable) is done with ``DELETE /servers/{id}/force``. Never set by the services themselves."""
REPLAY_COUNT = "x-replay-count"
"""How many times an operator replayed the message (a consumer sees a replay as a new generation)."""
REPLAYED_AT = "x-replayed-at"

ORIGINAL_MESSAGE_ID = "x-original-message-id"
"""A message staged for one queue (a delayed retry, a dead-letter copy) keeps its original message id here;
the relay publishes it as the AMQP ``message_id``."""

BROKER_ANNOTATIONS = ("x-death", "x-first-death-", "x-last-death-", "x-delivery-count")
"""Header prefixes the broker adds when it dead-letters or redelivers (a TTL delay queue, the delivery
limit). A copy of a message must not carry an earlier death's history as if it were this one."""

DELIVERY_COUNT = "x-delivery-count"
"""Quorum queues count earlier deliveries of a message here."""


def without_broker_annotations(headers: dict[str, object]) -> dict[str, object]:
    """The headers without what the broker added on earlier deaths and redeliveries."""
    return {k: v for k, v in headers.items() if not k.startswith(BROKER_ANNOTATIONS)}
