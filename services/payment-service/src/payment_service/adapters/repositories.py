"""payment-service's repositories: the only code that reads and writes its tables.

Each is bound to the open unit of work's session (``service_layer/unit_of_work.py``); the handlers, use
cases and jobs see these methods, never SQL. Their in-memory twins are in ``payment_service.testing``.
Status changes are not made here: the service layer moves rows through the state machines in ``domain/``,
and the session writes them at commit. The statements that must be one round trip under concurrency (the
first payment row of an order, the leases of the background workers, the webhook's multi-row insert) are
single SQL statements.

The statements every order runs (the webhook's insert, the worker's lease, the stored event's lock and mark,
the first payment and rental rows, the refund key's lock) go straight to the session's asyncpg connection
(``spawnpoint_kit.db.driver_connection``), inside the same transaction: a statement through the ORM costs
several times the CPU of asyncpg's prepared statement, and these run on the path a sale's burst waits on.
The ``payments``, ``checkout_sessions``, ``rentals`` and ``rental_transitions`` tables are read and
written only through the transaction's rows (``spawnpoint_kit.rows``, decision 48): row objects the service
layer changes by assignment, the changed columns written back at commit. The other tables' rows are still
loaded through the ORM, which writes their changes at commit.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from spawnpoint_contracts import RentalPhase
from spawnpoint_kit.db import as_sqlalchemy_errors, driver_connection, execute_sql
from spawnpoint_kit.rows import Table, TransactionRows, loaded

from ..domain.payment import PaymentStatus
from ..domain.stripe_events import StoredEventStatus
from .tables import (
    CheckoutSessionRow,
    PaymentRow,
    RefundRow,
    RentalRow,
    RentalTransitionRow,
    StripeCustomerRow,
    StripeEventRow,
)

STRIPE_EVENTS_CHANNEL = "spawnpoint_stripe_events"
"""The NOTIFY channel that wakes the webhook worker when stored events become due."""


@dataclass(frozen=True)
class ClaimedEvent:
    """A stored Stripe event leased to one worker (the lease runs out if that worker dies)."""

    id: str
    type: str
    session_id: str | None
    order_id: uuid.UUID | None
    attempts: int
    subscription_id: str | None = None
    traceparent: str | None = None
    """The checkout's trace context, from the session's metadata in the stored payload (docs/tracing.md)."""
    tracestate: str | None = None


_ADD_EVENTS = """
INSERT INTO stripe_events (id, type, payload, session_id, subscription_id, order_id, status, attempts,
                           received_at, next_attempt_at)
SELECT e.id, e.type, e.payload::jsonb, e.session_id, e.subscription_id, e.order_id, 'pending', 0, e.at,
    e.at + make_interval(secs => $8)
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::uuid[], $7::timestamptz[])
    AS e(id, type, payload, session_id, subscription_id, order_id, at)
ON CONFLICT (id) DO NOTHING
RETURNING id
"""
_NOTIFY_EVENTS = f"SELECT pg_notify('{STRIPE_EVENTS_CHANNEL}', '')"
_CLAIM_EVENTS = """
UPDATE stripe_events SET next_attempt_at = now() + make_interval(secs => $2)
WHERE id IN (
    SELECT id FROM stripe_events
    WHERE status = 'pending' AND next_attempt_at <= now()
    ORDER BY received_at
    LIMIT $1
    FOR UPDATE SKIP LOCKED
)
RETURNING id, type, session_id, order_id, attempts, subscription_id,
    payload->'data'->'object'->'metadata'->>'traceparent' AS traceparent,
    payload->'data'->'object'->'metadata'->>'tracestate' AS tracestate
"""
_LOCK_EVENT = "SELECT status FROM stripe_events WHERE id = $1 FOR UPDATE"
_PAYMENT_STATUS = "SELECT status FROM payments WHERE order_id = $1"
_RETRY_WAITING = """
WITH woken AS (
    UPDATE stripe_events SET next_attempt_at = now()
    WHERE order_id = $1 AND status = 'pending' AND next_attempt_at > now()
    RETURNING 1
)
SELECT count(*) FROM woken
"""
PAYMENTS = Table(PaymentRow, key="order_id", json_columns=("order_snapshot",), enums={"status": PaymentStatus})
SESSIONS = Table(CheckoutSessionRow, key="id", json_columns=("params",))
_ADD_PAYMENT = PAYMENTS.insert_sql(returning="order_id")
_GET_PAYMENT = f"SELECT {PAYMENTS.select_list} FROM payments WHERE order_id = $1"  # noqa: S608 - the model's columns
_LOCK_PAYMENT = _GET_PAYMENT + " FOR UPDATE"
_PAYMENT_BY_INTENT = f"SELECT {PAYMENTS.select_list} FROM payments WHERE payment_intent = $1 LIMIT 1"  # noqa: S608 - the columns
_SWEEP = """
SELECT p.order_id
FROM payments p
WHERE p.status = ANY($1::text[])
  AND (SELECT max(c.created_at) FROM checkout_sessions c WHERE c.order_id = p.order_id) < $2
ORDER BY p.swept_at NULLS FIRST, p.created_at
LIMIT $3
"""
_MARK_SWEPT = "UPDATE payments SET swept_at = $2 WHERE order_id = ANY($1::uuid[])"
_S = SESSIONS.select_list
_LOCK_SESSION = f"SELECT {_S} FROM checkout_sessions WHERE id = $1 FOR UPDATE"  # noqa: S608 - the model's columns
_SESSION_BY_STRIPE_ID = f"SELECT {_S} FROM checkout_sessions WHERE stripe_session_id = $1"  # noqa: S608 - columns
_LATEST_SESSION = f"SELECT {_S} FROM checkout_sessions WHERE order_id = $1 ORDER BY attempt DESC LIMIT 1"  # noqa: S608 - columns
_SESSIONS_OF = f"SELECT {_S} FROM checkout_sessions WHERE order_id = $1 ORDER BY attempt"  # noqa: S608 - columns
_SESSION_STATUS = "SELECT id, status FROM checkout_sessions WHERE stripe_session_id = $1"
_SET_SESSION_STATUS = "UPDATE checkout_sessions SET status = $2 WHERE id = $1"
_OPEN_SESSIONS = (
    "SELECT id, stripe_session_id FROM checkout_sessions "
    "WHERE order_id = $1 AND status = 'open' AND stripe_session_id IS NOT NULL ORDER BY attempt"
)
_LOCK_REFUND_KEY = "SELECT id FROM refunds WHERE idempotency_key = $1 FOR UPDATE"
RENTALS = Table(RentalRow, key="order_id", json_columns=("limits",), enums={"phase": RentalPhase})
TRANSITIONS = Table(RentalTransitionRow, key="id")
_R = RENTALS.select_list
_ADD_RENTAL = RENTALS.insert_sql(returning="order_id")
_GET_RENTAL = f"SELECT {_R} FROM rentals WHERE order_id = $1"  # noqa: S608 - the model's columns
_LOCK_RENTAL = _GET_RENTAL + " FOR UPDATE"
_RENTAL_BY_SUBSCRIPTION = f"SELECT {_R} FROM rentals WHERE subscription_id = $1"  # noqa: S608 - the model's columns
_HISTORY = (
    f"SELECT {TRANSITIONS.select_list} FROM rental_transitions "  # noqa: S608 - the model's columns
    "WHERE order_id = $1 ORDER BY version, at"
)
_LEASE_DUE_RENTALS = """
UPDATE rentals SET due_lease_until = now() + make_interval(secs => $2)
WHERE order_id IN (
    SELECT order_id FROM rentals
    WHERE due_at <= now() AND (due_lease_until IS NULL OR due_lease_until < now())
    ORDER BY due_at
    LIMIT $1
    FOR UPDATE SKIP LOCKED
)
RETURNING order_id
"""
_LEASE_UNSYNCED = """
UPDATE rentals SET synced_at = now()
WHERE order_id IN (
    SELECT order_id FROM rentals
    WHERE subscription_id IS NOT NULL AND phase <> 'ended'
      AND (synced_at IS NULL OR synced_at < $1)
    ORDER BY synced_at NULLS FIRST
    LIMIT $2
    FOR UPDATE SKIP LOCKED
)
RETURNING order_id, subscription_id
"""
_SUBSCRIPTION_RENTALS = """
SELECT order_id FROM rentals
WHERE subscription_id IS NOT NULL AND phase <> 'ended'
ORDER BY synced_at NULLS FIRST, order_id
LIMIT $1
"""
_BOOK = """
SELECT r.phase, r.kind, p.currency,
       p.order_snapshot -> 'billing' ->> 'interval' AS billing_interval,
       coalesce((p.order_snapshot -> 'billing' ->> 'interval_count')::int, 1) AS interval_count,
       count(*) AS rentals,
       coalesce(sum(p.amount), 0) AS amount
FROM rentals r LEFT JOIN payments p ON p.order_id = r.order_id
GROUP BY 1, 2, 3, 4, 5
"""
_MARK_EVENT = "UPDATE stripe_events SET status = $2, outcome = $3, processed_at = $4, last_error = NULL WHERE id = $1"


class PaymentRepository:
    def __init__(self, rows: TransactionRows) -> None:
        self._rows = rows

    async def add(self, payment: PaymentRow) -> bool:
        """Store the order's payment unless it has one already (two first requests racing both pass);
        True when this one was new. Read it with ``lock`` to change it (a new one is ``payment`` itself)."""
        return await self._rows.insert(PAYMENTS, _ADD_PAYMENT, payment)

    async def get(self, order_id: uuid.UUID) -> PaymentRow | None:
        found: PaymentRow | None = await self._rows.get(PAYMENTS, _GET_PAYMENT, order_id)
        return found

    async def status_of(self, order_id: uuid.UUID) -> PaymentStatus | None:
        """The payment's status (as this transaction sees it), without loading the row."""
        known: PaymentRow | None = self._rows.tracked(PAYMENTS, order_id)
        if known is not None:
            return known.status
        found = await self._rows.fetchrow(_PAYMENT_STATUS, order_id)
        return PaymentStatus(found[0]) if found is not None else None

    async def by_payment_intent(self, payment_intent: str) -> PaymentRow | None:
        """The one-time order a PaymentIntent paid (``payments.payment_intent``)."""
        found: PaymentRow | None = await self._rows.first(PAYMENTS, _PAYMENT_BY_INTENT, payment_intent)
        return found

    async def lock(self, order_id: uuid.UUID) -> PaymentRow | None:
        """The payment, locked until the transaction ends and read afresh: everything that changes it
        serialises here."""
        found: PaymentRow | None = await self._rows.lock(PAYMENTS, _LOCK_PAYMENT, order_id)
        return found

    async def claim_for_sweep(
        self, *, statuses: Iterable[PaymentStatus], cutoff: datetime, limit: int, now: datetime
    ) -> list[uuid.UUID]:
        """Orders in ``statuses`` whose latest checkout session is older than ``cutoff``, least recently
        swept first; each is marked swept at ``now``."""
        await self._rows.before_read(PAYMENTS)
        ids: list[uuid.UUID] = [
            r[0] for r in await self._rows.fetch(_SWEEP, [s.value for s in statuses], cutoff, limit)
        ]
        if ids:
            await self._rows.fetch(_MARK_SWEPT, ids, now)
        return ids


class CheckoutSessionRepository:
    """A table read and written only through the transaction's rows; before each read, this transaction's
    own changes to the table are written, so a statement sees them."""

    def __init__(self, rows: TransactionRows) -> None:
        self._rows = rows

    def add(self, row: CheckoutSessionRow) -> None:
        self._rows.stage(SESSIONS, row)

    async def lock(self, row_id: uuid.UUID) -> CheckoutSessionRow | None:
        found: CheckoutSessionRow | None = await self._rows.lock(SESSIONS, _LOCK_SESSION, row_id)
        return found

    async def by_stripe_id(self, session_id: str) -> CheckoutSessionRow | None:
        found: CheckoutSessionRow | None = await self._rows.first(SESSIONS, _SESSION_BY_STRIPE_ID, session_id)
        return found

    async def status_by_stripe_id(self, session_id: str) -> tuple[uuid.UUID, str] | None:
        """The attempt's row id and status (as this transaction sees it), without loading the row: what
        mirroring Stripe's answer needs (``service_layer.fulfilment``)."""
        await self._rows.before_read(SESSIONS)
        found = await self._rows.fetchrow(_SESSION_STATUS, session_id)
        return None if found is None else (found["id"], found["status"])

    async def set_status(self, row_id: uuid.UUID, status: str) -> None:
        """Change the attempt's status in this transaction (through its row, if this transaction holds it)."""
        known: CheckoutSessionRow | None = self._rows.tracked(SESSIONS, row_id)
        if known is not None:
            known.status = status
            return
        await self._rows.fetch(_SET_SESSION_STATUS, row_id, status)

    async def open_stripe_ids(self, order_id: uuid.UUID) -> list[str]:
        """Stripe ids of the order's attempts recorded as open, oldest first (as this transaction sees them)."""
        await self._rows.before_read(SESSIONS)
        return [str(row["stripe_session_id"]) for row in await self._rows.fetch(_OPEN_SESSIONS, order_id)]

    async def latest(self, order_id: uuid.UUID) -> CheckoutSessionRow | None:
        """The order's most recent attempt."""
        found: CheckoutSessionRow | None = await self._rows.first(SESSIONS, _LATEST_SESSION, order_id)
        return found

    async def of_order(self, order_id: uuid.UUID) -> list[CheckoutSessionRow]:
        """Every attempt of the order, oldest first (a handful at most)."""
        return await self._rows.many(SESSIONS, _SESSIONS_OF, order_id)


class StripeEventRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add_many(self, rows: list[dict[str, Any]], *, lease_seconds: float = 0.0) -> set[str]:
        """Insert verified events, skipping ids already stored (also ids repeated within ``rows``), and wake
        the workers on commit if any is new. Returns the ids inserted. One statement for the whole batch (the
        webhook's group commit, ``service_layer.event_intake``), whatever its size: the rows go as arrays
        (``unnest``), so it is one prepared statement on the driver connection. A row's ``payload`` is the
        event's JSON text (stored as it is) or the event itself.

        With ``lease_seconds``, the new events are leased to this process from the start (the webhook hands
        them to its own worker, ``EventIntake.hand_to``): no worker claims them before the lease runs out,
        and no NOTIFY is sent, since no worker has anything to look for."""
        columns = (
            [r["id"] for r in rows],
            [r["type"] for r in rows],
            [r["payload"] if isinstance(r["payload"], str) else json.dumps(r["payload"]) for r in rows],
            [r["session_id"] for r in rows],
            [r["subscription_id"] for r in rows],
            [r["order_id"] for r in rows],
            [r["received_at"] for r in rows],
        )
        connection = await driver_connection(self._session)
        with as_sqlalchemy_errors(_ADD_EVENTS):
            inserted = {str(r[0]) for r in await connection.fetch(_ADD_EVENTS, *columns, float(lease_seconds))}
            if inserted and not lease_seconds:
                await connection.execute(_NOTIFY_EVENTS)
        return inserted

    async def claim_due(self, *, limit: int, lease_seconds: float = 60.0) -> list[ClaimedEvent]:
        """Lease up to ``limit`` due pending events, oldest first (skipping those another worker holds)."""
        connection = await driver_connection(self._session)
        with as_sqlalchemy_errors(_CLAIM_EVENTS):
            rows = await connection.fetch(_CLAIM_EVENTS, limit, float(lease_seconds))
        return [
            ClaimedEvent(
                id=r["id"],
                type=r["type"],
                session_id=r["session_id"],
                order_id=r["order_id"],
                attempts=r["attempts"],
                subscription_id=r["subscription_id"],
                traceparent=r["traceparent"],
                tracestate=r["tracestate"],
            )
            for r in rows
        ]

    async def lock_status(self, event_id: str) -> StoredEventStatus | None:
        """The stored event's status, its row locked for this transaction (None if there is no such event):
        the runner's check, without reading the payload it does not need."""
        connection = await driver_connection(self._session)
        with as_sqlalchemy_errors(_LOCK_EVENT):
            status = await connection.fetchval(_LOCK_EVENT, event_id)
        return StoredEventStatus(status) if status is not None else None

    async def mark(self, event_id: str, *, status: StoredEventStatus, outcome: str, at: datetime) -> None:
        """Record how the (locked) event ended: its new status, its outcome, when; its last error cleared."""
        connection = await driver_connection(self._session)
        with as_sqlalchemy_errors(_MARK_EVENT):
            await connection.execute(_MARK_EVENT, event_id, status.value, outcome[:32], at)

    async def lock(self, event_id: str) -> StripeEventRow | None:
        """The stored event, locked for this transaction (whatever its status)."""
        return await self._session.get(StripeEventRow, event_id, with_for_update=True)

    async def retry_waiting(self, order_id: uuid.UUID) -> None:
        """The order just became known: its pending events that wait for a later attempt are due now."""
        connection = await driver_connection(self._session)
        with as_sqlalchemy_errors(_RETRY_WAITING):
            woken = await connection.fetchval(_RETRY_WAITING, order_id)
            if woken:
                await connection.execute(_NOTIFY_EVENTS)

    async def prune(self, *, before: datetime, limit: int) -> int:
        """Delete up to ``limit`` finished events (processed or abandoned) received before ``before``."""
        result = await execute_sql(
            self._session,
            sa.text(
                "DELETE FROM stripe_events WHERE id IN (SELECT id FROM stripe_events "
                "WHERE status IN ('processed', 'abandoned') AND received_at < :before LIMIT :limit)"
            ),
            {"before": before, "limit": limit},
        )
        return int(result.rowcount or 0)


class RefundRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, refund: RefundRow) -> bool:
        """Store the refund unless its idempotency key exists already; True when this one was new (a
        concurrent insert of the same key waits for the other transaction, so only one wins). The row is
        written as it is: read it back with ``lock_by_key`` to change it."""
        inserted = await self._session.exec(
            insert(RefundRow)
            .values(**refund.model_dump())
            .on_conflict_do_nothing(index_elements=["idempotency_key"])
            .returning(col(RefundRow.id))
        )
        return inserted.first() is not None

    async def get(self, refund_id: uuid.UUID) -> RefundRow | None:
        return await self._session.get(RefundRow, refund_id)

    async def lock(self, refund_id: uuid.UUID) -> RefundRow | None:
        """The refund, locked and read afresh (another transaction may have moved it since it was read)."""
        return await self._session.get(RefundRow, refund_id, with_for_update=True, populate_existing=True)

    async def of_order(self, order_id: uuid.UUID) -> list[RefundRow]:
        return list((await self._session.exec(select(RefundRow).where(RefundRow.order_id == order_id))).all())

    async def lock_by_key(self, key: str) -> RefundRow | None:
        """The refund with this key, locked. Most orders never have one (every provisioning event asks), so the
        lock is taken with one driver statement and the row is only loaded when there is one."""
        connection = await driver_connection(self._session)
        with as_sqlalchemy_errors(_LOCK_REFUND_KEY):
            refund_id = await connection.fetchval(_LOCK_REFUND_KEY, key)
        if refund_id is None:
            return None
        return await self._session.get(RefundRow, refund_id, with_for_update=True)

    async def claim_due(self, *, limit: int, lease_seconds: float = 60.0) -> list[uuid.UUID]:
        """Lease up to ``limit`` due refunds (``scheduled`` or ``executing``), earliest first."""
        rows = (
            await execute_sql(
                self._session,
                sa.text(
                    """
                    UPDATE refunds SET lease_until = now() + make_interval(secs => :lease)
                    WHERE id IN (
                        SELECT id FROM refunds
                        WHERE status IN ('scheduled', 'executing') AND due_at <= now()
                          AND (lease_until IS NULL OR lease_until < now())
                        ORDER BY due_at
                        LIMIT :limit
                        FOR UPDATE SKIP LOCKED
                    )
                    RETURNING id
                    """
                ),
                {"limit": limit, "lease": lease_seconds},
            )
        ).all()
        return [row[0] for row in rows]


class RentalRepository:
    """``rentals`` and ``rental_transitions``, read and written only through the transaction's rows (a
    rental changes on every payment and at every deadline); this transaction's own changes to ``rentals``
    are written before each statement that reads it."""

    def __init__(self, rows: TransactionRows) -> None:
        self._rows = rows

    async def add(self, rental: RentalRow) -> None:
        """Store the order's rental unless it has one (two first events racing both pass): one statement,
        a rental is made once per order, in the fulfilment's transaction."""
        await self._rows.insert(RENTALS, _ADD_RENTAL, rental)

    async def lock(self, order_id: uuid.UUID) -> RentalRow | None:
        """The rental, locked and read afresh: every change of a rental serialises here."""
        found: RentalRow | None = await self._rows.lock(RENTALS, _LOCK_RENTAL, order_id)
        return found

    async def get(self, order_id: uuid.UUID) -> RentalRow | None:
        found: RentalRow | None = await self._rows.get(RENTALS, _GET_RENTAL, order_id)
        return found

    async def by_subscription(self, subscription_id: str) -> RentalRow | None:
        found: RentalRow | None = await self._rows.first(RENTALS, _RENTAL_BY_SUBSCRIPTION, subscription_id)
        return found

    def record(self, transition: RentalTransitionRow) -> None:
        self._rows.stage(TRANSITIONS, transition)

    async def lease_due(self, *, limit: int, lease_seconds: float) -> list[uuid.UUID]:
        """Rentals whose deadline passed, earliest first, each leased so that one process works it."""
        await self._rows.before_read(RENTALS)
        return [row[0] for row in await self._rows.fetch(_LEASE_DUE_RENTALS, limit, float(lease_seconds))]

    async def lease_unsynced(self, *, older_than: datetime, limit: int) -> list[uuid.UUID]:
        """Subscription rentals not read from Stripe since ``older_than`` (least recently first), marked
        read now so that another process's reconciler takes others: the reconciler's round."""
        await self._rows.before_read(RENTALS)
        return [row[0] for row in await self._rows.fetch(_LEASE_UNSYNCED, older_than, limit)]

    async def history(self, order_id: uuid.UUID) -> list[RentalTransitionRow]:
        """The rental's moves, in order (read only: a transition is never changed)."""
        await self._rows.before_read(TRANSITIONS)
        return [loaded(RentalTransitionRow, TRANSITIONS.decoded(r)) for r in await self._rows.fetch(_HISTORY, order_id)]

    async def subscription_rentals(self, *, limit: int) -> list[uuid.UUID]:
        """Subscription rentals Stripe knows the subscription of and that have not ended (the set the
        reconciler reads), least recently read first; no lease (``POST /operator/rentals/reconcile``)."""
        await self._rows.before_read(RENTALS)
        return [row[0] for row in await self._rows.fetch(_SUBSCRIPTION_RENTALS, limit)]

    async def book(self) -> list[RentalBookRow]:
        """Every rental counted by phase, kind, currency and billing interval, with the sum of their
        payments' amounts: one statement for the rental gauges (``service_layer.rental_metrics``)."""
        await self._rows.before_read(RENTALS)
        await self._rows.before_read(PAYMENTS)
        return [
            RentalBookRow(
                phase=str(r["phase"]),
                kind=str(r["kind"]),
                currency=r["currency"],
                interval=r["billing_interval"],
                interval_count=int(r["interval_count"]),
                rentals=int(r["rentals"]),
                amount=int(r["amount"]),
            )
            for r in await self._rows.fetch(_BOOK)
        ]


class StripeCustomerRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def lock_or_create(self, user_id: str, idempotency_key: str) -> StripeCustomerRow:
        """The user's customer row, locked; created (without a Stripe id yet) the first time. The key is
        stored with it, so a retry after a lost answer asks Stripe for the same customer again."""
        await self._session.exec(
            insert(StripeCustomerRow)
            .values(user_id=user_id, idempotency_key=idempotency_key, created_at=datetime.now(UTC))
            .on_conflict_do_nothing(index_elements=["user_id"])
        )
        row = await self._session.get(StripeCustomerRow, user_id, with_for_update=True, populate_existing=True)
        if row is None:  # just inserted or already there, and customers are never deleted
            raise RuntimeError(f"the Stripe customer row of user {user_id} was not stored")
        return row


@dataclass(frozen=True)
class RentalBookRow:
    """One group of rentals (``RentalRepository.book``): how many are in ``phase`` of ``kind``, billed in
    ``currency`` every ``interval_count`` ``interval`` (None for a fixed term), and their payments' sum."""

    phase: str
    kind: str
    currency: str | None
    interval: str | None
    interval_count: int
    rentals: int
    amount: int
