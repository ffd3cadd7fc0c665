"""status-service's repository: the only code that writes its tables (the stored events, the read model
and its change log).

``StatusRepository`` is bound to the open unit of work's session (``service_layer/unit_of_work.py``); the
projector sees these methods, never SQL. Every statement runs with asyncpg's own ``fetch``/``execute`` on
the session's driver connection (``spawnpoint_kit.db.driver_connection``), inside the session's
transaction, because every delivery of every event runs them: through the ORM one statement cost several
times its driver cost (the compiled-statement cache key, the execution context, ORM loading), and the
projection did about eight of them per event. asyncpg prepares each statement once per connection and
reuses it. The projection of one event is three round trips: ``lock_and_store``, ``load`` and ``save`` (the
row, and for a visible change its change-log row and NOTIFY, in one statement).

Nothing here goes through the ORM's identity map: a row written earlier in the same transaction (two events
of one order in one batch of the kit's group commit) is read back as PostgreSQL has it. JSONB values travel
as JSON text (the connection's jsonb codec, set up by SQLAlchemy's asyncpg dialect for every pooled
connection, encodes text and decodes to Python objects); the stored events are read as text and parsed by
pydantic straight from it.

The HTTP reads do not go through this repository: they are plain Core queries on a pooled connection
(``service_layer/reads.py``), cheaper than a session on a cache miss.
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import asyncpg
from sqlmodel.ext.asyncio.session import AsyncSession

from spawnpoint_contracts import Event, parse_event, redact_order
from spawnpoint_kit.db import as_sqlalchemy_errors, driver_connection

from .records import StatusRecord, StoredOrder, VisibleChange

CHANNEL = "spawnpoint_status_changes"
"""The NOTIFY channel every status-service process listens on; the payload is the new ``Snapshot``."""

# The orders' advisory locks are taken before the insert, in the same round trip, in one fixed order (the ids'
# canonical text, as ``_LOCK_ORDERS``): two processes storing a batch each never deadlock. The next statement
# (``_LOAD``) takes a new snapshot, after the locks were granted, so it sees every event of these orders
# committed before: READ COMMITTED gives each statement its own snapshot, taken when the statement starts,
# which is why the events are not read in this statement too. ``ON CONFLICT`` looks at the index, not at the
# snapshot. ``received_at`` is the moment of the insert (``now()`` would give a whole batch its transaction's
# start).
_LOCK_AND_STORE = (
    "WITH locked AS MATERIALIZED (SELECT count(pg_advisory_xact_lock(hashtextextended(k, 0))) AS n "
    "FROM (SELECT DISTINCT unnest(CAST($2 AS uuid[]))::text AS k ORDER BY 1) AS ordered) "
    "INSERT INTO order_events (event_id, order_id, event_type, occurred_at, body, received_at) "
    "SELECT e.event_id, e.order_id, e.event_type, e.occurred_at, CAST(e.body AS jsonb), clock_timestamp() "
    "FROM locked, unnest(CAST($1 AS uuid[]), CAST($2 AS uuid[]), CAST($3 AS text[]), CAST($4 AS timestamptz[]), "
    "CAST($5 AS text[])) AS e (event_id, order_id, event_type, occurred_at, body) "
    "WHERE locked.n >= 0 "
    "ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
)
# The same key as ``_LOCK_AND_STORE`` (``hashtextextended`` of the id's canonical text), several orders in one
# fixed order: no deadlock between a rebuild's batch and the consumers.
_LOCK_ORDERS = (
    "SELECT count(pg_advisory_xact_lock(hashtextextended(k, 0))) "
    "FROM (SELECT unnest(CAST($1 AS text[])) AS k ORDER BY 1) AS ordered"
)
PARSED_EVENTS_KEPT = 2048
"""Stored events kept parsed in memory (``_parsed``): the last few hundred orders' worth."""


@functools.lru_cache(maxsize=PARSED_EVENTS_KEPT)
def _parsed(body: str) -> Event:
    """A stored event's body, parsed once per process while it is among the recently read ones.

    Why: every delivery recomputes its order's read model from all of the order's stored events, so an
    order's k-th event parsed all k bodies again (an order has about six: 21 parses instead of 6), 7 % of
    status-service's profile samples in a burst. A stored body never changes and events are immutable
    (frozen models), so the parsed event for a body text is the same whenever it is read: the projection
    stays a function of the stored events alone."""
    return parse_event(body)


_COUNT_DELIVERY = "UPDATE order_events SET deliveries = deliveries + 1 WHERE event_id = $1"
_COUNT_ORDERS = "SELECT count(*) FROM (SELECT order_id FROM order_events UNION SELECT order_id FROM order_status) AS o"
_PAGE_OF_ORDERS = (
    "SELECT order_id FROM (SELECT order_id FROM order_events UNION SELECT order_id FROM order_status) AS o "
    "WHERE CAST($1 AS uuid) IS NULL OR order_id > CAST($1 AS uuid) ORDER BY order_id LIMIT $2"
)
# Per order: its events (as JSON text), its row, and the version it is at (the change log's last one only
# for an order without a row: COALESCE evaluates the subquery only then).
_LOAD = (
    "SELECT o.order_id, "
    "ARRAY(SELECT e.body::text FROM order_events AS e WHERE e.order_id = o.order_id) AS bodies, "
    "s.order_id IS NOT NULL AS has_row, s.user_id, s.status, s.phase, s.message, s.server_id, s.connect_path, "
    "s.updated_at, s.rental, s.decided_by, s.last_event_id, s.events_applied, "
    "COALESCE(s.version, (SELECT max(c.version) FROM order_status_changes AS c WHERE c.order_id = o.order_id), 0) "
    "AS version "
    "FROM unnest(CAST($1 AS uuid[])) AS o (order_id) LEFT JOIN order_status AS s ON s.order_id = o.order_id"
)
_UPSERT = (
    "INSERT INTO order_status (order_id, user_id, status, phase, message, server_id, connect_path, updated_at, "
    "rental, decided_by, last_event_id, events_applied, version) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) "
    "ON CONFLICT (order_id) DO UPDATE SET user_id = EXCLUDED.user_id, status = EXCLUDED.status, "
    "phase = EXCLUDED.phase, message = EXCLUDED.message, server_id = EXCLUDED.server_id, "
    "connect_path = EXCLUDED.connect_path, updated_at = EXCLUDED.updated_at, rental = EXCLUDED.rental, "
    "decided_by = EXCLUDED.decided_by, last_event_id = EXCLUDED.last_event_id, "
    "events_applied = EXCLUDED.events_applied, version = EXCLUDED.version"
)
# A visible change: the row, its change-log row (the row's visible columns at its new version) and the NOTIFY,
# in one statement (data-modifying CTEs always run, referenced or not).
_UPSERT_LOG_AND_NOTIFY = (  # built from this module's constants only
    f"WITH saved AS ({_UPSERT}), "  # noqa: S608
    "logged AS (INSERT INTO order_status_changes (order_id, version, user_id, status, phase, message, server_id, "
    "connect_path, updated_at, rental, changed_at) VALUES ($1, $13, $2, $3, $4, $5, $6, $7, $8, $9, $14)) "
    f"SELECT pg_notify('{CHANNEL}', $15)"
)
_REMOVE = "DELETE FROM order_status WHERE order_id = $1"


def stored_body(event: Event) -> dict[str, Any]:
    """The event as status-service keeps it: an order snapshot's secret settings (a server password) redacted.
    The projection never reads settings, so the read model and a rebuild are the same either way; the trail
    an operator reads shows the setting was chosen, never its value."""
    body: dict[str, Any] = event.model_dump(mode="json")
    payload = body.get("payload")
    if isinstance(payload, dict) and isinstance(payload.get("order"), dict):
        body["payload"] = {**payload, "order": redact_order(payload["order"])}
    return body


def _json(value: dict[str, Any] | None) -> str | None:
    return json.dumps(value, separators=(",", ":")) if value is not None else None


def _record(row: asyncpg.Record) -> StatusRecord:
    return StatusRecord(
        order_id=row["order_id"],
        user_id=row["user_id"],
        status=row["status"],
        phase=row["phase"],
        message=row["message"],
        server_id=row["server_id"],
        connect_path=row["connect_path"],
        updated_at=row["updated_at"],
        rental=row["rental"],
        decided_by=row["decided_by"],
        last_event_id=row["last_event_id"],
        events_applied=row["events_applied"],
        version=row["version"],
    )


class StatusRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def _fetch(self, statement: str, *args: object) -> list[asyncpg.Record]:
        connection = await driver_connection(self._session)
        with as_sqlalchemy_errors(statement):
            rows: list[asyncpg.Record] = await connection.fetch(statement, *args)
        return rows

    async def _execute(self, statement: str, *args: object) -> None:
        connection = await driver_connection(self._session)
        with as_sqlalchemy_errors(statement):
            await connection.execute(statement, *args)

    # the stored events ------------------------------------------------------------------------------

    async def lock_and_store(self, events: Sequence[Event]) -> set[uuid.UUID]:
        """Take the orders' locks (until the end of the transaction) and insert the events, in one round trip
        whatever their number; the ids of the events stored now (the others were stored before: an inbox
        entry pruned, a manual replay)."""
        stored = await self._fetch(
            _LOCK_AND_STORE,
            [e.event_id for e in events],
            [e.order_id for e in events],
            [e.event_type for e in events],
            [e.occurred_at for e in events],
            [json.dumps(stored_body(e), separators=(",", ":")) for e in events],
        )
        return {row[0] for row in stored}

    async def count_delivery(self, event_id: uuid.UUID) -> None:
        """One more delivery of a stored event (a redelivery or a duplicate publish: the trail shows it)."""
        await self._execute(_COUNT_DELIVERY, event_id)

    # the orders -------------------------------------------------------------------------------------

    async def lock_orders(self, order_ids: Iterable[uuid.UUID]) -> None:
        """Per-order advisory locks until the end of the transaction, taken in one fixed order (no deadlock
        between a rebuild's batch and the consumers)."""
        await self._fetch(_LOCK_ORDERS, sorted({str(o) for o in order_ids}))

    async def count_orders(self) -> int:
        """Orders with stored events or a read-model row (what a rebuild walks through)."""
        [row] = await self._fetch(_COUNT_ORDERS)
        total: int = row[0]
        return total

    async def orders_after(self, after: uuid.UUID | None, *, limit: int) -> list[uuid.UUID]:
        """The next ``limit`` of those orders by id, after ``after`` (a rebuild's next batch)."""
        return [row[0] for row in await self._fetch(_PAGE_OF_ORDERS, after, limit)]

    # the read model and its change log -------------------------------------------------------------

    async def load(self, order_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, StoredOrder]:
        """What projecting these orders needs, each of them (the caller holds their locks): their stored
        events, their read-model rows and the versions they are at, in one round trip."""
        loaded: dict[uuid.UUID, StoredOrder] = {}
        for row in await self._fetch(_LOAD, list(order_ids)):
            loaded[row["order_id"]] = StoredOrder(
                events=[_parsed(body) for body in row["bodies"]],
                row=_record(row) if row["has_row"] else None,
                version=row["version"],
            )
        return loaded

    async def save(self, row: StatusRecord, change: VisibleChange | None = None) -> None:
        """Insert or update the read-model row; with ``change``, also log the row as its new version and
        announce it on ``CHANNEL`` (PostgreSQL delivers the notification at commit, never for a rollback,
        to every process that listens). One round trip either way."""
        values = (
            row.order_id,
            row.user_id,
            row.status,
            row.phase,
            row.message,
            row.server_id,
            row.connect_path,
            row.updated_at,
            _json(row.rental),
            row.decided_by,
            row.last_event_id,
            row.events_applied,
            row.version,
        )
        if change is None:
            await self._execute(_UPSERT, *values)
        else:
            await self._execute(_UPSERT_LOG_AND_NOTIFY, *values, change.changed_at, change.announcement)

    async def remove(self, order_id: uuid.UUID) -> None:
        """Delete a read-model row that no stored event supports any more."""
        await self._execute(_REMOVE, order_id)
