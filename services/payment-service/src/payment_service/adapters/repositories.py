"""payment-service's repositories: the only code that reads and writes its tables.

Each is bound to the open unit of work's session (``service_layer/unit_of_work.py``); the handlers, use
cases and jobs see these methods, never SQL. Their in-memory twins are in ``payment_service.testing``.
Status changes are not made here: the service layer moves rows through the state machines in ``domain/``,
and the session writes them at commit. The statements that must be one round trip under concurrency (the
first payment row of an order, the leases of the background workers, the webhook's multi-row insert) are
single SQL statements.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from spawnpoint_kit.db import execute_sql

from ..domain.payment import PaymentStatus
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


async def _notify(session: AsyncSession) -> None:
    """Wake the webhook worker when the surrounding transaction commits."""
    await execute_sql(session, sa.text("SELECT pg_notify(:c, '')"), {"c": STRIPE_EVENTS_CHANNEL})


class PaymentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, payment: PaymentRow) -> bool:
        """Store the order's payment unless it has one already (two first requests racing both pass);
        True when this one was new. The row is written as it is: read it back with ``lock`` to change it."""
        inserted = await self._session.exec(
            insert(PaymentRow)
            .values(**payment.model_dump())
            .on_conflict_do_nothing(index_elements=["order_id"])
            .returning(col(PaymentRow.order_id))
        )
        return inserted.first() is not None

    async def get(self, order_id: uuid.UUID) -> PaymentRow | None:
        return await self._session.get(PaymentRow, order_id)

    async def by_payment_intent(self, payment_intent: str) -> PaymentRow | None:
        """The one-time order a PaymentIntent paid (``payments.payment_intent``)."""
        return (await self._session.exec(select(PaymentRow).where(PaymentRow.payment_intent == payment_intent))).first()

    async def lock(self, order_id: uuid.UUID) -> PaymentRow | None:
        """The payment, locked until the transaction ends: everything that changes it serialises here."""
        statement = select(PaymentRow).where(PaymentRow.order_id == order_id).with_for_update()
        return (await self._session.exec(statement)).first()

    async def claim_for_sweep(
        self, *, statuses: Iterable[PaymentStatus], cutoff: datetime, limit: int, now: datetime
    ) -> list[uuid.UUID]:
        """Orders in ``statuses`` whose latest checkout session is older than ``cutoff``, least recently
        swept first; each is marked swept at ``now``."""
        rows = (
            await execute_sql(
                self._session,
                sa.text(
                    """
                    SELECT p.order_id
                    FROM payments p
                    WHERE p.status = ANY(:statuses)
                      AND (SELECT max(c.created_at) FROM checkout_sessions c WHERE c.order_id = p.order_id) < :cutoff
                    ORDER BY p.swept_at NULLS FIRST, p.created_at
                    LIMIT :limit
                    """
                ),
                {"statuses": [s.value for s in statuses], "cutoff": cutoff, "limit": limit},
            )
        ).all()
        ids: list[uuid.UUID] = [row[0] for row in rows]
        if ids:
            await execute_sql(
                self._session,
                sa.text("UPDATE payments SET swept_at = :now WHERE order_id = ANY(:ids)"),
                {"now": now, "ids": ids},
            )
        return ids


class CheckoutSessionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    def add(self, row: CheckoutSessionRow) -> None:
        self._session.add(row)

    async def lock(self, row_id: uuid.UUID) -> CheckoutSessionRow | None:
        return await self._session.get(CheckoutSessionRow, row_id, with_for_update=True)

    async def by_stripe_id(self, session_id: str) -> CheckoutSessionRow | None:
        statement = select(CheckoutSessionRow).where(CheckoutSessionRow.stripe_session_id == session_id)
        return (await self._session.exec(statement)).first()

    async def latest(self, order_id: uuid.UUID) -> CheckoutSessionRow | None:
        """The order's most recent attempt."""
        return (
            await self._session.exec(
                select(CheckoutSessionRow)
                .where(CheckoutSessionRow.order_id == order_id)
                .order_by(col(CheckoutSessionRow.attempt).desc())
                .limit(1)
            )
        ).first()

    async def of_order(self, order_id: uuid.UUID) -> list[CheckoutSessionRow]:
        """Every attempt of the order, oldest first (a handful at most)."""
        rows = await self._session.exec(
            select(CheckoutSessionRow)
            .where(CheckoutSessionRow.order_id == order_id)
            .order_by(col(CheckoutSessionRow.attempt))
        )
        return list(rows.all())


class StripeEventRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add_many(self, rows: list[dict[str, Any]]) -> set[str]:
        """Insert verified events, skipping ids already stored (also ids repeated within ``rows``), and wake
        the worker on commit if any is new. Returns the ids inserted. One statement for the whole batch:
        the webhook's group commit (``service_layer.event_intake``)."""
        statement = insert(StripeEventRow).values(rows).on_conflict_do_nothing(index_elements=["id"])
        result = await self._session.exec(statement.returning(StripeEventRow.id))  # type: ignore[call-overload]  # sqlmodel's exec has no overload for a multi-row insert
        inserted = {str(r[0]) for r in result.all()}
        if inserted:
            await _notify(self._session)
        return inserted

    async def claim_due(self, *, limit: int, lease_seconds: float = 60.0) -> list[ClaimedEvent]:
        """Lease up to ``limit`` due pending events, oldest first (skipping those another worker holds)."""
        rows = (
            await execute_sql(
                self._session,
                sa.text(
                    """
                    UPDATE stripe_events SET next_attempt_at = now() + make_interval(secs => :lease)
                    WHERE id IN (
                        SELECT id FROM stripe_events
                        WHERE status = 'pending' AND next_attempt_at <= now()
                        ORDER BY received_at
                        LIMIT :limit
                        FOR UPDATE SKIP LOCKED
                    )
                    RETURNING id, type, session_id, order_id, attempts, subscription_id,
                        payload->'data'->'object'->'metadata'->>'traceparent' AS traceparent,
                        payload->'data'->'object'->'metadata'->>'tracestate' AS tracestate
                    """
                ),
                {"limit": limit, "lease": lease_seconds},
            )
        ).mappings()
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

    async def lock(self, event_id: str) -> StripeEventRow | None:
        """The stored event, locked for this transaction (whatever its status)."""
        return await self._session.get(StripeEventRow, event_id, with_for_update=True)

    async def retry_waiting(self, order_id: uuid.UUID) -> None:
        """The order just became known: its pending events that wait for a later attempt are due now."""
        result = await execute_sql(
            self._session,
            sa.text(
                "UPDATE stripe_events SET next_attempt_at = now() "
                "WHERE order_id = :order_id AND status = 'pending' AND next_attempt_at > now()"
            ),
            {"order_id": order_id},
        )
        if result.rowcount:
            await _notify(self._session)

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
        return (
            await self._session.exec(select(RefundRow).where(RefundRow.idempotency_key == key).with_for_update())
        ).first()

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
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, rental: RentalRow) -> None:
        """Store the order's rental unless it has one (two first events racing both pass)."""
        await self._session.exec(
            insert(RentalRow).values(**rental.model_dump()).on_conflict_do_nothing(index_elements=["order_id"])
        )

    async def lock(self, order_id: uuid.UUID) -> RentalRow | None:
        """The rental, locked and read afresh: every change of a rental serialises here."""
        return await self._session.get(RentalRow, order_id, with_for_update=True, populate_existing=True)

    async def get(self, order_id: uuid.UUID) -> RentalRow | None:
        return await self._session.get(RentalRow, order_id)

    async def by_subscription(self, subscription_id: str) -> RentalRow | None:
        return (await self._session.exec(select(RentalRow).where(RentalRow.subscription_id == subscription_id))).first()

    def record(self, transition: RentalTransitionRow) -> None:
        self._session.add(transition)

    async def lease_due(self, *, limit: int, lease_seconds: float) -> list[uuid.UUID]:
        """Rentals whose deadline passed, earliest first, each leased so that one process works it."""
        rows = await execute_sql(
            self._session,
            sa.text(
                """
                UPDATE rentals SET due_lease_until = now() + make_interval(secs => :lease)
                WHERE order_id IN (
                    SELECT order_id FROM rentals
                    WHERE due_at <= now() AND (due_lease_until IS NULL OR due_lease_until < now())
                    ORDER BY due_at
                    LIMIT :limit
                    FOR UPDATE SKIP LOCKED
                )
                RETURNING order_id
                """
            ),
            {"limit": limit, "lease": lease_seconds},
        )
        return [row[0] for row in rows.all()]

    async def lease_unsynced(self, *, older_than: datetime, limit: int) -> list[uuid.UUID]:
        """Subscription rentals not read from Stripe since ``older_than`` (least recently first), marked
        read now so that another process's reconciler takes others: the reconciler's round."""
        rows = await execute_sql(
            self._session,
            sa.text(
                """
                UPDATE rentals SET synced_at = now()
                WHERE order_id IN (
                    SELECT order_id FROM rentals
                    WHERE subscription_id IS NOT NULL AND phase <> 'ended'
                      AND (synced_at IS NULL OR synced_at < :older_than)
                    ORDER BY synced_at NULLS FIRST
                    LIMIT :limit
                    FOR UPDATE SKIP LOCKED
                )
                RETURNING order_id, subscription_id
                """
            ),
            {"older_than": older_than, "limit": limit},
        )
        return [row[0] for row in rows.all()]

    async def history(self, order_id: uuid.UUID) -> list[RentalTransitionRow]:
        rows = await self._session.exec(
            select(RentalTransitionRow)
            .where(RentalTransitionRow.order_id == order_id)
            .order_by(col(RentalTransitionRow.version), col(RentalTransitionRow.at))
        )
        return list(rows.all())

    async def subscription_rentals(self, *, limit: int) -> list[uuid.UUID]:
        """Subscription rentals Stripe knows the subscription of and that have not ended (the set the
        reconciler reads), least recently read first; no lease (``POST /operator/rentals/reconcile``)."""
        rows = await execute_sql(
            self._session,
            sa.text(
                """
                SELECT order_id FROM rentals
                WHERE subscription_id IS NOT NULL AND phase <> 'ended'
                ORDER BY synced_at NULLS FIRST, order_id
                LIMIT :limit
                """
            ),
            {"limit": limit},
        )
        return [row[0] for row in rows.all()]

    async def book(self) -> list[RentalBookRow]:
        """Every rental counted by phase, kind, currency and billing interval, with the sum of their
        payments' amounts: one statement for the rental gauges (``service_layer.rental_metrics``)."""
        rows = await execute_sql(
            self._session,
            sa.text(
                """
                SELECT r.phase, r.kind, p.currency,
                       p.order_snapshot -> 'billing' ->> 'interval' AS billing_interval,
                       coalesce((p.order_snapshot -> 'billing' ->> 'interval_count')::int, 1) AS interval_count,
                       count(*) AS rentals,
                       coalesce(sum(p.amount), 0) AS amount
                FROM rentals r LEFT JOIN payments p ON p.order_id = r.order_id
                GROUP BY 1, 2, 3, 4, 5
                """
            ),
        )
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
            for r in rows.mappings().all()
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
