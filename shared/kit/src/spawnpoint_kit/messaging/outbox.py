"""The transactional outbox: events are rows written in the same transaction as the state change.

Request handlers and consumers never publish. Their unit of work calls ``stage_event`` (or
``stage_message``) on the session that carries their state change; the row commits or rolls back with it.
Every row is checked against AMQP's limits as it is staged (``wire.check_outgoing``): a message that could
never be published is refused here, in the transaction that made it, instead of waiting in the outbox for
ever. ``OutboxRelay`` (see
``relay.py``) is the only code that talks to the broker on the publishing side.

With tracing on (``spawnpoint_kit.tracing``), the row's ``headers`` also keep the W3C ``traceparent`` /
``tracestate`` of the span current at staging (the request or delivery that decided the event; a copy's
inherited context is replaced by the current one), so the relay can continue that trace when it publishes.

A ``pg_notify`` in the same transaction wakes the relay at commit, so the usual publish latency is a few
milliseconds; polling remains the safety net because NOTIFY is not durable.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlmodel import Column, Field, SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from spawnpoint_contracts import Event

from .. import tracing
from ..db import as_sqlalchemy_errors, driver_connection
from .headers import ORIGINAL_MESSAGE_ID
from .topology import Topology
from .wire import check_outgoing

NOTIFY_CHANNEL = "spawnpoint_outbox"


class OutboxMessage(SQLModel, table=True):
    """One message waiting to be (or already) published. ``id`` becomes the AMQP ``message_id``."""

    __tablename__ = "outbox"

    id: uuid.UUID = Field(primary_key=True)
    exchange: str = Field(max_length=255, description="'' is the default exchange (direct to a queue).")
    routing_key: str = Field(max_length=255)
    message_type: str = Field(max_length=100)
    body: bytes = Field(sa_column=Column(sa.LargeBinary(), nullable=False))
    headers: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(postgresql.JSONB(), nullable=False, server_default="{}")
    )
    correlation_id: str | None = Field(default=None, max_length=200)
    order_id: uuid.UUID | None = Field(default=None)
    created_at: datetime = Field(
        default_factory=lambda: datetime.now(UTC),
        sa_column=Column(sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    available_at: datetime = Field(
        default_factory=lambda: datetime.now(UTC),
        sa_column=Column(sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    attempts: int = Field(default=0)
    last_error: str | None = Field(default=None, sa_column=Column(sa.Text(), nullable=True))
    published_at: datetime | None = Field(default=None, sa_column=Column(sa.DateTime(timezone=True), nullable=True))
    parked_at: datetime | None = Field(
        default=None,
        sa_column=Column(sa.DateTime(timezone=True), nullable=True),
        description="Set aside after failing on its own too often (never for a broker outage): an operator "
        "looks at last_error and retries it (spawnctl outbox).",
    )


def _headers_json_safe(headers: dict[str, Any]) -> dict[str, Any]:
    return dict(json.loads(json.dumps(headers, default=str)))


@dataclass(slots=True)
class StagedRow:
    """An outbox row as it is staged (the columns a new row needs; the table's defaults give the rest).

    A plain object, not an ``OutboxMessage``: building an ORM row and flushing it through the session cost
    more CPU than the rest of staging together, and staged rows are only ever inserted, in one statement
    per transaction (``stage_rows``)."""

    id: uuid.UUID
    exchange: str
    routing_key: str
    message_type: str
    body: bytes
    headers: dict[str, Any]
    correlation_id: str | None
    order_id: uuid.UUID | None
    available_at: datetime


def event_row(event: Event, topology: Topology, *, headers: dict[str, Any] | None = None) -> StagedRow:
    """The outbox row that publishes ``event`` on the events exchange; ``Unpublishable`` when a field could
    not go on the wire."""
    row = StagedRow(
        id=event.event_id,
        exchange=topology.events_exchange.name,
        routing_key=event.routing_key,
        message_type=event.event_type,
        body=event.to_json_bytes(),
        headers=_headers_json_safe(
            {
                "event_type": event.event_type,
                "event_version": event.event_version,
                **(headers or {}),
                **(tracing.current_headers() if tracing.ENABLED else {}),
            }
        ),
        correlation_id=event.correlation_id,
        order_id=event.order_id,
        available_at=datetime.now(UTC),
    )
    _check(row)
    return row


def message_row(
    *,
    queue: str,
    body: bytes,
    message_id: uuid.UUID,
    message_type: str,
    headers: dict[str, Any] | None = None,
    correlation_id: str | None = None,
    order_id: uuid.UUID | None = None,
    delay: timedelta | None = None,
) -> StagedRow:
    """The outbox row of a message addressed to one queue (through the default exchange): a delayed retry or
    a dead-letter copy. ``message_id`` is kept from the original so consumers still recognise it.

    The row's own id must be unique, so a fresh id is used for the row and the original message id
    travels in the ``x-original-message-id`` header, which the relay uses as the AMQP message_id."""
    row = StagedRow(
        id=uuid.uuid4(),
        exchange="",
        routing_key=queue,
        message_type=message_type,
        body=body,
        headers=_headers_json_safe(
            {
                **(headers or {}),
                **(tracing.current_headers() if tracing.ENABLED else {}),
                ORIGINAL_MESSAGE_ID: str(message_id),
            }
        ),
        correlation_id=correlation_id,
        order_id=order_id,
        available_at=datetime.now(UTC) + (delay or timedelta(0)),
    )
    _check(row)
    return row


def _check(row: StagedRow) -> None:
    check_outgoing(
        routing_key=row.routing_key,
        message_type=row.message_type,
        correlation_id=row.correlation_id,
        headers=row.headers,
    )


_INSERT = (
    "INSERT INTO outbox (id, exchange, routing_key, message_type, body, headers, correlation_id, order_id, "
    "available_at, attempts) "
    "SELECT $1::uuid, $2::text, $3::text, $4::text, $5::bytea, $6::text::jsonb, $7::text, $8::uuid, "
    "$9::timestamptz, 0 FROM (SELECT pg_notify('spawnpoint_outbox', '')) AS wake"  # NOTIFY_CHANNEL
)
"""The row and the relays' wake-up in one statement: each round trip to PostgreSQL costs this process a
send and a receive (on loopback TCP the kernel's work for both ends is charged to the sender), so the NOTIFY
rides on the insert instead of a statement of its own. PostgreSQL delivers one notification per channel and
payload per transaction however many rows raised it."""


async def stage_rows(session: AsyncSession, rows: Sequence[StagedRow]) -> None:
    """Insert ``rows`` in the caller's transaction (committed with it), and wake the relays at commit.

    One pipelined ``executemany`` for all of a transaction's rows, its NOTIFY included (``_INSERT``), on the
    session's driver connection (``db.driver_connection``)."""
    if not rows:
        return
    connection = await driver_connection(session)
    with as_sqlalchemy_errors(_INSERT):
        await connection.executemany(
            _INSERT,
            [
                (
                    r.id,
                    r.exchange,
                    r.routing_key,
                    r.message_type,
                    r.body,
                    json.dumps(r.headers),
                    r.correlation_id,
                    r.order_id,
                    r.available_at,
                )
                for r in rows
            ],
        )


async def stage_event(
    session: AsyncSession,
    event: Event,
    topology: Topology,
    *,
    headers: dict[str, Any] | None = None,
) -> StagedRow:
    """Add ``event`` to the outbox within the caller's transaction (committed with it); ``Unpublishable``
    when a field could not go on the wire. (A unit of work stages all of its rows at once instead.)"""
    row = event_row(event, topology, headers=headers)
    await stage_rows(session, [row])
    return row


async def stage_message(session: AsyncSession, **fields: Any) -> StagedRow:
    """Add one queue message (``message_row``'s fields) to the outbox within the caller's transaction."""
    row = message_row(**fields)
    await stage_rows(session, [row])
    return row
