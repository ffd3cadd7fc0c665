"""Recording verified Stripe events, and the bookkeeping of applying them in the background.

The webhook only verifies, deduplicates on the event id and stores the event, then answers 2xx: it never
calls Stripe, the panel or anything slow. The webhook worker applies stored events later.

**The event id and its effects commit together.** The event id is recorded twice, each time in the
transaction that carries the effects of that step:

1. on receipt, the webhook's intake (``event_intake.EventIntake``) inserts the row (primary key =
   Stripe's event id) in the transaction that *is* the webhook's effect: a redelivery finds the row and changes nothing;
2. when applied, the fulfilment functions lock the row (``claim_in_transaction``), apply the state change
   and stage its outbox events, and mark the row ``processed`` (``mark_processed``) in that same
   transaction. A crash before that commit leaves the row ``pending`` with no effect, and it is applied
   again; a row already ``processed`` (a concurrent worker after a lease ran out) is skipped.

An event that cannot be applied yet (its order is not known here yet, Stripe is briefly unreachable)
stays ``pending`` and is retried with backoff, so nothing is acknowledged and then dropped. When the
order becomes known, its waiting events are retried at once (``retry_waiting_events``). After three
days (Stripe's own retry window) a still-failing event is marked ``abandoned`` and logged as an error.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from spawnpoint_kit.db import execute_sql
from spawnpoint_kit.logs import get_logger, log_context

from ..adapters.tables import StripeEventRow
from ..metrics import EVENTS_APPLIED, type_label

log = get_logger(__name__)

NOTIFY_CHANNEL = "spawnpoint_stripe_events"

COMPLETED = "checkout.session.completed"
ASYNC_SUCCEEDED = "checkout.session.async_payment_succeeded"
ASYNC_FAILED = "checkout.session.async_payment_failed"
EXPIRED = "checkout.session.expired"
HANDLED_TYPES = frozenset({COMPLETED, ASYNC_SUCCEEDED, ASYNC_FAILED, EXPIRED})

GIVE_UP_AFTER = timedelta(days=3)
"""Stripe itself retries for up to three days; an event we still cannot apply then needs a person."""

PENDING, PROCESSED, ABANDONED = "pending", "processed", "abandoned"


class MalformedEvent(ValueError):
    """Signed by Stripe but not an event we can read (no id, no type, no object)."""


class RetryLater(Exception):
    """The event cannot be applied yet; keep it and try again later."""


def order_ref(obj: dict[str, Any]) -> uuid.UUID | None:
    """The order id a session object carries (metadata first, then client_reference_id)."""
    metadata = obj.get("metadata") or {}
    ref = metadata.get("serverOrderId") if isinstance(metadata, dict) else None
    ref = ref or obj.get("client_reference_id")
    try:
        return uuid.UUID(str(ref)) if ref else None
    except ValueError:
        return None


async def notify(session: AsyncSession) -> None:
    """Wake the webhook worker when the surrounding transaction commits."""
    await execute_sql(session, sa.text("SELECT pg_notify(:c, '')"), {"c": NOTIFY_CHANNEL})


def stored_row(event: dict[str, Any], *, now: datetime | None = None) -> dict[str, Any] | None:
    """The ``stripe_events`` row for a verified event, or None for a type we do not handle (acknowledged
    and not kept). Raises ``MalformedEvent`` for a signed body that is not an event we can read."""
    event_id, event_type = event.get("id"), event.get("type")
    if not isinstance(event_id, str) or not isinstance(event_type, str) or not event_id:
        raise MalformedEvent("event has no id or type")
    if event_type not in HANDLED_TYPES:
        return None
    data = event.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    if not isinstance(obj, dict) or not isinstance(obj.get("id"), str):
        raise MalformedEvent("event has no data.object.id")
    if len(event_id) > 255 or len(obj["id"]) > 255:
        raise MalformedEvent("event or object id is too long")
    now = now or datetime.now(UTC)
    return {
        "id": event_id,
        "type": event_type,
        "payload": event,
        "session_id": obj["id"],
        "order_id": order_ref(obj),
        "status": PENDING,
        "attempts": 0,
        "received_at": now,
        "next_attempt_at": now,
    }


async def insert_rows(session: AsyncSession, rows: list[dict[str, Any]]) -> set[str]:
    """Insert event rows in the caller's transaction, skipping ids already stored (also repeated ones
    within ``rows``); wakes the worker on commit if any row is new. Returns the ids inserted."""
    statement = insert(StripeEventRow).values(rows).on_conflict_do_nothing(index_elements=["id"])
    result = await session.exec(statement.returning(StripeEventRow.id))  # type: ignore[call-overload]
    inserted = {str(r[0]) for r in result.all()}
    if inserted:
        await notify(session)
    return inserted


async def claim_in_transaction(session: AsyncSession, event_id: str | None) -> bool:
    """Lock the stored event for the transaction that applies it. False when it was applied already
    (then the caller must not apply it again). ``None`` (not an event: return page, sweeper) is True."""
    if event_id is None:
        return True
    row = await session.get(StripeEventRow, event_id, with_for_update=True)
    return row is not None and row.status == PENDING


async def mark_processed(session: AsyncSession, event_id: str | None, outcome: str) -> None:
    """Record, in the caller's transaction, that the event's effects are done."""
    if event_id is None:
        return
    row = await session.get(StripeEventRow, event_id)
    if row is None:
        return
    row.status = PROCESSED
    row.outcome = outcome[:32]
    row.processed_at = datetime.now(UTC)
    row.last_error = None
    session.add(row)


async def retry_waiting_events(session: AsyncSession, order_id: uuid.UUID) -> None:
    """The order just became known: events that were waiting for it are due now."""
    result = await execute_sql(
        session,
        sa.text(
            "UPDATE stripe_events SET next_attempt_at = now() "
            "WHERE order_id = :order_id AND status = 'pending' AND next_attempt_at > now()"
        ),
        {"order_id": order_id},
    )
    if result.rowcount:
        await notify(session)


EventApplier = Callable[[dict[str, Any], str], Awaitable[str]]
"""Applies one stored event (payload, event id) and returns its outcome."""

_CLAIM = sa.text(
    """
    UPDATE stripe_events SET next_attempt_at = now() + make_interval(secs => :lease)
    WHERE id IN (
        SELECT id FROM stripe_events
        WHERE status = 'pending' AND next_attempt_at <= now()
        ORDER BY received_at
        LIMIT :limit
        FOR UPDATE SKIP LOCKED
    )
    RETURNING id, type, payload, attempts, received_at
    """
)


async def claim_pending(
    sessions: async_sessionmaker[AsyncSession], *, limit: int, lease_seconds: float = 60.0
) -> list[dict[str, Any]]:
    """Lease up to ``limit`` due events (a crashed worker's lease simply runs out)."""
    async with sessions() as session:
        rows = (await execute_sql(session, _CLAIM, {"limit": limit, "lease": lease_seconds})).mappings().all()
        await session.commit()
    return [dict(r) for r in rows]


async def record_failure(sessions: async_sessionmaker[AsyncSession], event_id: str, error: Exception) -> None:
    """The event could not be applied: keep it pending with a backoff, or give up after three days."""
    async with sessions() as session:
        row = await session.get(StripeEventRow, event_id, with_for_update=True)
        if row is None or row.status != PENDING:
            await session.commit()
            return
        now = datetime.now(UTC)
        row.attempts += 1
        row.last_error = f"{type(error).__name__}: {error}"[:2000]
        row.next_attempt_at = now + timedelta(seconds=min(300.0, 0.5 * 2 ** min(row.attempts - 1, 12)))
        if now - row.received_at > GIVE_UP_AFTER:
            row.status = ABANDONED
            row.outcome = "abandoned"
            log.error("stripe event abandoned after three days of retries", error=row.last_error)
        session.add(row)
        await session.commit()


async def process_one(sessions: async_sessionmaker[AsyncSession], claimed: dict[str, Any], apply: EventApplier) -> bool:
    """Apply one claimed event; True when it is done."""
    payload: dict[str, Any] = claimed["payload"]
    data = payload.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    ref = order_ref(obj) if isinstance(obj, dict) else None
    event_type = str(claimed["type"])
    with log_context(stripe_event_id=claimed["id"], order_id=ref, stripe_event_type=event_type):
        try:
            outcome = await apply(payload, str(claimed["id"]))
        except RetryLater as exc:
            log.info("stripe event kept for retry", reason=str(exc), attempts=claimed["attempts"] + 1)
            EVENTS_APPLIED.labels(type_label(event_type), "retry").inc()
            await record_failure(sessions, claimed["id"], exc)
            return False
        except Exception as exc:
            log.exception("stripe event failed; will retry", error=repr(exc))
            EVENTS_APPLIED.labels(type_label(event_type), "error").inc()
            await record_failure(sessions, claimed["id"], exc)
            return False
        EVENTS_APPLIED.labels(type_label(event_type), outcome).inc()
        log.info("stripe event applied", outcome=outcome)
        return True
