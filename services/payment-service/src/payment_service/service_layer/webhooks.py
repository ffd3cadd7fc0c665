"""Recording verified Stripe events, and processing them in the background.

The webhook only verifies, deduplicates on the event id and stores the event, then answers 2xx: it
never calls Stripe, the panel or anything slow. ``process_pending`` (run by the webhook worker) applies
stored events. An event that cannot be applied yet (its order is not known here yet, Stripe is briefly
unreachable) stays pending and is retried with backoff, so nothing is acknowledged and then dropped.
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

log = get_logger(__name__)

NOTIFY_CHANNEL = "spawnpoint_stripe_events"

COMPLETED = "checkout.session.completed"
ASYNC_SUCCEEDED = "checkout.session.async_payment_succeeded"
ASYNC_FAILED = "checkout.session.async_payment_failed"
EXPIRED = "checkout.session.expired"
HANDLED_TYPES = frozenset({COMPLETED, ASYNC_SUCCEEDED, ASYNC_FAILED, EXPIRED})


class MalformedEvent(ValueError):
    """Signed by Stripe but not an event we can read (no id, no type, no object)."""


def _order_ref(obj: dict[str, Any]) -> uuid.UUID | None:
    metadata = obj.get("metadata") or {}
    ref = metadata.get("serverOrderId") if isinstance(metadata, dict) else None
    ref = ref or obj.get("client_reference_id")
    try:
        return uuid.UUID(str(ref)) if ref else None
    except ValueError:
        return None


async def record_event(sessions: async_sessionmaker[AsyncSession], event: dict[str, Any]) -> str:
    """Store a verified event once. Returns ``stored``, ``duplicate`` or ``ignored`` (a type we do not
    handle is acknowledged and not kept)."""
    event_id, event_type = event.get("id"), event.get("type")
    if not isinstance(event_id, str) or not isinstance(event_type, str):
        raise MalformedEvent("event has no id or type")
    if event_type not in HANDLED_TYPES:
        return "ignored"
    obj = (event.get("data") or {}).get("object")
    if not isinstance(obj, dict) or not isinstance(obj.get("id"), str):
        raise MalformedEvent("event has no data.object.id")
    now = datetime.now(UTC)
    async with sessions() as session:
        result = await session.exec(
            insert(StripeEventRow)
            .values(
                id=event_id,
                type=event_type,
                payload=event,
                session_id=obj["id"],
                order_id=_order_ref(obj),
                status="pending",
                attempts=0,
                received_at=now,
                next_attempt_at=now,
            )
            .on_conflict_do_nothing(index_elements=["id"])
            .returning(sa.literal(1))
        )
        stored = result.first() is not None
        if stored:
            await execute_sql(session, sa.text("SELECT pg_notify(:c, '')"), {"c": NOTIFY_CHANNEL})
        await session.commit()
    return "stored" if stored else "duplicate"


class RetryLater(Exception):
    """The event cannot be applied yet; keep it and try again later."""


EventApplier = Callable[[dict[str, Any]], Awaitable[None]]

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
    RETURNING id, type, payload, attempts
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


async def finish(
    sessions: async_sessionmaker[AsyncSession], event_id: str, *, error: Exception | None, attempts: int
) -> None:
    async with sessions() as session:
        row = await session.get(StripeEventRow, event_id)
        if row is None:
            return
        if error is None:
            row.status = "processed"
            row.processed_at = datetime.now(UTC)
            row.last_error = None
        else:
            row.attempts = attempts + 1
            row.last_error = f"{type(error).__name__}: {error}"[:2000]
            delay = min(300.0, 0.5 * 2**attempts)
            row.next_attempt_at = datetime.now(UTC) + timedelta(seconds=delay)
        session.add(row)
        await session.commit()


async def process_one(sessions: async_sessionmaker[AsyncSession], claimed: dict[str, Any], apply: EventApplier) -> bool:
    """Apply one claimed event; True when it is done."""
    payload: dict[str, Any] = claimed["payload"]
    obj = (payload.get("data") or {}).get("object") or {}
    order_ref = _order_ref(obj)
    with log_context(stripe_event_id=claimed["id"], order_id=order_ref, stripe_event_type=claimed["type"]):
        try:
            await apply(payload)
        except RetryLater as exc:
            log.info("stripe event kept for retry", reason=str(exc), attempts=claimed["attempts"] + 1)
            await finish(sessions, claimed["id"], error=exc, attempts=claimed["attempts"])
            return False
        except Exception as exc:
            log.exception("stripe event failed; will retry", error=repr(exc))
            await finish(sessions, claimed["id"], error=exc, attempts=claimed["attempts"])
            return False
        await finish(sessions, claimed["id"], error=None, attempts=claimed["attempts"])
        return True
