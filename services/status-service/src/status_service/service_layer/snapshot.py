"""One version of an order's visible status, and every form it travels in.

A ``Snapshot`` is built once per change per process (from a database row or from the NOTIFY payload the
projector sends at commit) and then shared by every poll and every open stream: the JSON body, its ETag
and the Server-Sent Events frame are each encoded once, lazily, and reused. That is what keeps a poll
down to a dictionary lookup and a change reaching a thousand streams down to a thousand socket writes.

The ETag is a hash of the body: equal bodies have equal ETags in every process, before and after a
rebuild, and any change a customer could see (the ``rental`` object included) changes it.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime
from typing import Any

from ..domain.polling import poll_after
from ..domain.projection import Phase


def iso(moment: datetime) -> str:
    """UTC ISO 8601 with a ``Z``, as every Spawnpoint API writes times."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


class Snapshot:
    """The visible state of one order at one version (immutable)."""

    __slots__ = (
        "_body",
        "_etag",
        "_sse",
        "changed_at",
        "connect_path",
        "message",
        "order_id",
        "phase",
        "rental",
        "server_id",
        "status",
        "updated_at",
        "user_id",
        "version",
    )

    def __init__(
        self,
        *,
        order_id: uuid.UUID,
        user_id: str | None,
        version: int,
        status: str,
        phase: str,
        message: str,
        server_id: str | None,
        connect_path: str | None,
        updated_at: datetime,
        changed_at: datetime | None = None,
        rental: dict[str, Any] | None = None,
    ) -> None:
        self.order_id = order_id
        self.user_id = user_id
        self.version = version
        self.status = status
        self.phase = phase
        self.message = message
        self.server_id = server_id
        self.connect_path = connect_path
        self.updated_at = updated_at
        self.changed_at = changed_at
        self.rental = rental
        self._body: bytes | None = None
        self._etag: str | None = None
        self._sse: bytes | None = None

    def __repr__(self) -> str:
        return f"Snapshot({self.order_id}, v{self.version}, {self.status}/{self.phase})"

    @classmethod
    def of(cls, row: Any, *, changed_at: datetime | None = None) -> Snapshot:
        """From anything with the read model's columns (an ``order_status`` or ``order_status_changes`` row)."""
        return cls(
            order_id=row.order_id,
            user_id=row.user_id,
            version=row.version,
            status=row.status,
            phase=row.phase,
            message=row.message,
            server_id=row.server_id,
            connect_path=row.connect_path,
            updated_at=row.updated_at,
            changed_at=changed_at if changed_at is not None else getattr(row, "changed_at", None),
            rental=row.rental,
        )

    # the polling and streaming representation ------------------------------------------------------

    @property
    def poll_after(self) -> int:
        return poll_after(Phase(self.phase))

    def public(self) -> dict[str, Any]:
        """What a customer sees (the body of ``GET /orders/{id}/status`` and of each stream event)."""
        return {
            "order_id": str(self.order_id),
            "status": self.status,
            "phase": self.phase,
            "message": self.message,
            "server_id": self.server_id,
            "connect_path": self.connect_path,
            "updated_at": iso(self.updated_at),
            "version": self.version,
            "poll_after_seconds": self.poll_after,
            "rental": self.rental,
        }

    @property
    def body(self) -> bytes:
        if self._body is None:
            self._body = json.dumps(self.public(), separators=(",", ":")).encode()
        return self._body

    @property
    def etag(self) -> str:
        """A strong validator: the quoted hash of the body."""
        if self._etag is None:
            self._etag = '"' + hashlib.blake2b(self.body, digest_size=12).hexdigest() + '"'
        return self._etag

    @property
    def sse(self) -> bytes:
        """The Server-Sent Events frame of this version (``id`` = version, ``event: status``)."""
        if self._sse is None:
            self._sse = b"id: %d\nevent: status\ndata: %s\n\n" % (self.version, self.body)
        return self._sse

    # the NOTIFY payload ----------------------------------------------------------------------------

    def to_notify(self) -> str:
        """Everything a listener needs to update its cache and streams without a query (< 8000 bytes)."""
        return json.dumps(
            {
                "o": str(self.order_id),
                "u": self.user_id,
                "v": self.version,
                "s": self.status,
                "p": self.phase,
                "m": self.message,
                "sid": self.server_id,
                "c": self.connect_path,
                "t": iso(self.updated_at),
                "at": iso(self.changed_at) if self.changed_at else None,
                "r": self.rental,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_notify(cls, payload: str) -> Snapshot:
        data = json.loads(payload)
        return cls(
            order_id=uuid.UUID(data["o"]),
            user_id=data["u"],
            version=int(data["v"]),
            status=data["s"],
            phase=data["p"],
            message=data["m"],
            server_id=data["sid"],
            connect_path=data["c"],
            updated_at=datetime.fromisoformat(data["t"]),
            changed_at=datetime.fromisoformat(data["at"]) if data.get("at") else None,
            rental=data.get("r"),
        )
