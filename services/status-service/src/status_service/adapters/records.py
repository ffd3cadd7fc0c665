"""What the projector reads from and writes to the repository: plain records, not ORM rows.

The read model is read and written with SQL on the session's driver connection (``repositories.py``), so it
never goes through the ORM's identity map: a row written earlier in the same transaction (two events of one
order in one batch) is read back as PostgreSQL has it, and building a record costs a dataclass, not an
instrumented ORM object.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from spawnpoint_contracts import Event


@dataclass(slots=True)
class StatusRecord:
    """One ``order_status`` row: what the polling API serves, and why (``decided_by`` and the event count)."""

    order_id: uuid.UUID
    user_id: str | None
    status: str
    phase: str
    message: str
    server_id: str | None
    connect_path: str | None
    updated_at: datetime
    rental: dict[str, Any] | None
    decided_by: uuid.UUID | None
    last_event_id: uuid.UUID
    events_applied: int
    version: int
    """Bumped on every visible change (the stream's event id)."""

    def visible(self) -> tuple[object, ...]:
        """What a customer can see: a difference here bumps the version, is logged and announced."""
        return (
            self.user_id,
            self.status,
            self.phase,
            self.message,
            self.server_id,
            self.connect_path,
            self.updated_at,
            self.rental,
        )

    def bookkeeping(self) -> tuple[object, ...]:
        """What only an operator reads: a difference here is rewritten without a new version."""
        return (self.decided_by, self.last_event_id, self.events_applied)


@dataclass(frozen=True, slots=True)
class StoredOrder:
    """Everything the projection of one order needs, read in one round trip under the order's lock."""

    events: list[Event] = field(default_factory=list)
    """Every stored event of the order, in no particular order (the projection does not need one)."""
    row: StatusRecord | None = None
    version: int = 0
    """The version the order is at: its row's, or for an order without a row the last one its change log
    holds (a row rebuilt after being lost continues its sequence, so a stream's ``Last-Event-ID`` never
    points at a reused version); 0 for an order never shown."""


@dataclass(frozen=True, slots=True)
class VisibleChange:
    """A visible change being saved: logged in ``order_status_changes`` at the row's new version, and
    announced with ``pg_notify`` (delivered at commit, never for a rollback)."""

    changed_at: datetime
    announcement: str
    """The NOTIFY payload (``Snapshot.to_notify``)."""
