"""Helpers for payment-service's own tests (component tests here, end-to-end tests in tests/integration):
orders shaped as order-service hands them over, read-only views of what the service committed, and the
in-memory repositories and unit of work for handler tests without a database (``FakePaymentDatabase``).

Like ``stripe_fake.testing``, it ships with the package so that tests in other folders can import it with
full typing; nothing in the service imports it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from spawnpoint_contracts import (
    Billing,
    Deploy,
    FailureReason,
    FeatureLimits,
    Limits,
    OrderSnapshot,
    ProvisionFailed,
    ProvisionFailedPayload,
    ServerCreated,
    ServerCreatedPayload,
    ServerInstalled,
    ServerInstalledPayload,
    ServerSpec,
)
from spawnpoint_kit.messaging.outbox import OutboxMessage
from spawnpoint_kit.unit_of_work import E, FakeUnitOfWork

from .adapters.order_client import OrderNotFound, OrderView
from .adapters.repositories import ClaimedEvent, RentalBookRow
from .adapters.tables import (
    CheckoutSessionRow,
    PaymentRow,
    RefundRow,
    RentalRow,
    RentalTransitionRow,
    StripeCustomerRow,
    StripeEventRow,
)
from .domain.payment import PaymentStatus
from .domain.refunds import RefundState
from .domain.stripe_events import StoredEventStatus
from .service_layer.unit_of_work import PaymentUnitOfWork


class Orders:
    """Makes orders as order-service would hand them to payment-service, and hands them out again as
    order-service would (``get_order``: the checkout's ``OrderReader``)."""

    def __init__(self) -> None:
        self.known: dict[uuid.UUID, OrderView] = {}

    async def get_order(self, order_id: uuid.UUID, *, bearer_token: str) -> OrderView:
        try:
            return self.known[order_id]
        except KeyError:
            raise OrderNotFound(str(order_id)) from None

    def new(
        self, *, amount: int = 500, currency: str = "eur", user_id: str = "alice", billing: Billing | None = None
    ) -> OrderView:
        snapshot = OrderSnapshot(
            order_id=uuid.uuid4(),
            user_id=user_id,
            email=f"{user_id}@example.test",
            game_id="minecraft-paper",
            game_name="Minecraft (Paper)",
            plan_id="starter",
            plan_name="Starter",
            server_name="Component world",
            amount=amount,
            currency=currency,
            server_spec=ServerSpec(
                egg_id=1,
                docker_image="ghcr.io/pterodactyl/yolks:java_21",
                startup="java -jar server.jar",
                limits=Limits(memory=1024, swap=0, disk=5120, io=500, cpu=100),
                feature_limits=FeatureLimits(databases=0, backups=0, allocations=0),
                deploy=Deploy(locations=[1]),
            ),
            billing=billing,
        )
        order = OrderView(snapshot=snapshot, status="pending_payment", correlation_id=str(uuid.uuid4()))
        self.known[snapshot.order_id] = order
        return order


def provision_failed(order_id: uuid.UUID, *, replayable: bool = False, at: datetime | None = None) -> ProvisionFailed:
    """The provisioner's ProvisionFailed: for good (a bad egg variable) unless ``replayable`` (no capacity)."""
    return ProvisionFailed(
        order_id=order_id,
        correlation_id="c",
        producer="provisioner",
        occurred_at=at or datetime.now(UTC),
        payload=ProvisionFailedPayload(
            reason=FailureReason.NO_CAPACITY if replayable else FailureReason.INVALID_EGG_VARIABLES,
            message="the panel said no",
            attempts=1,
            replayable=replayable,
        ),
    )


def server_created(order_id: uuid.UUID, at: datetime) -> ServerCreated:
    return ServerCreated(
        order_id=order_id,
        correlation_id="c",
        producer="provisioner",
        occurred_at=at,
        payload=ServerCreatedPayload(
            server_id=7, server_uuid="u", identifier="abcd1234", external_id=str(order_id), panel_user_id=3
        ),
    )


def server_installed(order_id: uuid.UUID, at: datetime) -> ServerInstalled:
    return ServerInstalled(
        order_id=order_id,
        correlation_id="c",
        producer="provisioner",
        occurred_at=at,
        payload=ServerInstalledPayload(server_id=7, identifier="abcd1234"),
    )


@dataclass(frozen=True)
class Db:
    """Reads what the service layer committed."""

    sessions: async_sessionmaker[AsyncSession]

    async def outbox(self, order_id: uuid.UUID, message_type: str) -> list[OutboxMessage]:
        async with self.sessions() as session:
            rows = await session.exec(
                select(OutboxMessage).where(
                    OutboxMessage.order_id == order_id, OutboxMessage.message_type == message_type
                )
            )
            return list(rows.all())

    async def payment(self, order_id: uuid.UUID) -> PaymentRow:
        async with self.sessions() as session:
            row = await session.get(PaymentRow, order_id)
            assert row is not None
            return row

    async def refunds(self, order_id: uuid.UUID) -> list[RefundRow]:
        async with self.sessions() as session:
            rows = await session.exec(select(RefundRow).where(RefundRow.order_id == order_id))
            return list(rows.all())

    async def attempts(self, order_id: uuid.UUID) -> list[CheckoutSessionRow]:
        async with self.sessions() as session:
            rows = await session.exec(
                select(CheckoutSessionRow)
                .where(CheckoutSessionRow.order_id == order_id)
                .order_by(col(CheckoutSessionRow.attempt))
            )
            return list(rows.all())

    async def stripe_events(self, order_id: uuid.UUID) -> list[StripeEventRow]:
        async with self.sessions() as session:
            rows = await session.exec(select(StripeEventRow).where(StripeEventRow.order_id == order_id))
            return list(rows.all())


# In memory: payment-service's repositories and unit of work, for handler tests without a database -------


def _now() -> datetime:
    return datetime.now(UTC)


class FakeCheckoutSessions:
    def __init__(self) -> None:
        self.rows: dict[uuid.UUID, CheckoutSessionRow] = {}

    def add(self, row: CheckoutSessionRow) -> None:
        self.rows[row.id] = row

    async def lock(self, row_id: uuid.UUID) -> CheckoutSessionRow | None:
        return self.rows.get(row_id)

    async def by_stripe_id(self, session_id: str) -> CheckoutSessionRow | None:
        return next((r for r in self.rows.values() if r.stripe_session_id == session_id), None)

    async def status_by_stripe_id(self, session_id: str) -> tuple[uuid.UUID, str] | None:
        row = await self.by_stripe_id(session_id)
        return (row.id, row.status) if row is not None else None

    async def set_status(self, row_id: uuid.UUID, status: str) -> None:
        self.rows[row_id].status = status

    async def open_stripe_ids(self, order_id: uuid.UUID) -> list[str]:
        rows = await self.of_order(order_id)
        return [r.stripe_session_id for r in rows if r.status == "open" and r.stripe_session_id]

    async def latest(self, order_id: uuid.UUID) -> CheckoutSessionRow | None:
        rows = await self.of_order(order_id)
        return rows[-1] if rows else None

    async def of_order(self, order_id: uuid.UUID) -> list[CheckoutSessionRow]:
        return sorted((r for r in self.rows.values() if r.order_id == order_id), key=lambda r: r.attempt)


class FakePayments:
    def __init__(self, sessions: FakeCheckoutSessions) -> None:
        self.rows: dict[uuid.UUID, PaymentRow] = {}
        self._sessions = sessions

    async def add(self, payment: PaymentRow) -> bool:
        if payment.order_id in self.rows:
            return False
        self.rows[payment.order_id] = payment
        return True

    async def get(self, order_id: uuid.UUID) -> PaymentRow | None:
        return self.rows.get(order_id)

    async def status_of(self, order_id: uuid.UUID) -> PaymentStatus | None:
        payment = await self.get(order_id)
        return payment.status if payment is not None else None

    async def by_payment_intent(self, payment_intent: str) -> PaymentRow | None:
        return next((p for p in self.rows.values() if p.payment_intent == payment_intent), None)

    async def lock(self, order_id: uuid.UUID) -> PaymentRow | None:
        return self.rows.get(order_id)

    async def claim_for_sweep(
        self, *, statuses: Iterable[PaymentStatus], cutoff: datetime, limit: int, now: datetime
    ) -> list[uuid.UUID]:
        wanted = set(statuses)
        due = []
        for payment in self.rows.values():
            created = [r.created_at for r in await self._sessions.of_order(payment.order_id)]
            if payment.status in wanted and created and max(created) < cutoff:
                due.append(payment)
        due.sort(key=lambda p: (p.swept_at is not None, p.swept_at or p.created_at, p.created_at))
        for payment in due[:limit]:
            payment.swept_at = now
        return [p.order_id for p in due[:limit]]


class FakeStripeEvents:
    def __init__(self) -> None:
        self.rows: dict[str, StripeEventRow] = {}

    async def add_many(self, rows: list[dict[str, Any]], *, lease_seconds: float = 0.0) -> set[str]:
        inserted = set()
        for row in rows:
            if row["id"] not in self.rows:
                payload = row["payload"]
                due = row["received_at"] + timedelta(seconds=lease_seconds)
                self.rows[row["id"]] = StripeEventRow(
                    **{
                        **row,
                        "payload": json.loads(payload) if isinstance(payload, str) else payload,
                        "next_attempt_at": due,
                    }
                )
                inserted.add(row["id"])
        return inserted

    async def claim_due(self, *, limit: int, lease_seconds: float = 60.0) -> list[ClaimedEvent]:
        now = _now()
        due = sorted(
            (r for r in self.rows.values() if r.status == StoredEventStatus.PENDING and r.next_attempt_at <= now),
            key=lambda r: r.received_at,
        )[:limit]
        for row in due:
            row.next_attempt_at = now + timedelta(seconds=lease_seconds)
        return [ClaimedEvent(r.id, r.type, r.session_id, r.order_id, r.attempts, r.subscription_id) for r in due]

    async def lock(self, event_id: str) -> StripeEventRow | None:
        return self.rows.get(event_id)

    async def lock_status(self, event_id: str) -> StoredEventStatus | None:
        row = self.rows.get(event_id)
        return row.status if row is not None else None

    async def mark(self, event_id: str, *, status: StoredEventStatus, outcome: str, at: datetime) -> None:
        row = self.rows[event_id]
        row.status, row.outcome, row.processed_at, row.last_error = status, outcome[:32], at, None

    async def retry_waiting(self, order_id: uuid.UUID) -> None:
        now = _now()
        for row in self.rows.values():
            if row.order_id == order_id and row.status == StoredEventStatus.PENDING and row.next_attempt_at > now:
                row.next_attempt_at = now

    async def prune(self, *, before: datetime, limit: int) -> int:
        done = [
            r.id
            for r in self.rows.values()
            if r.status in (StoredEventStatus.PROCESSED, StoredEventStatus.ABANDONED) and r.received_at < before
        ][:limit]
        for event_id in done:
            del self.rows[event_id]
        return len(done)


class FakeRefunds:
    def __init__(self) -> None:
        self.rows: dict[uuid.UUID, RefundRow] = {}

    async def add(self, refund: RefundRow) -> bool:
        if any(r.idempotency_key == refund.idempotency_key for r in self.rows.values()):
            return False
        self.rows[refund.id] = refund
        return True

    async def get(self, refund_id: uuid.UUID) -> RefundRow | None:
        return self.rows.get(refund_id)

    async def lock(self, refund_id: uuid.UUID) -> RefundRow | None:
        return self.rows.get(refund_id)

    async def lock_by_key(self, key: str) -> RefundRow | None:
        return next((r for r in self.rows.values() if r.idempotency_key == key), None)

    async def of_order(self, order_id: uuid.UUID) -> list[RefundRow]:
        return [r for r in self.rows.values() if r.order_id == order_id]

    async def claim_due(self, *, limit: int, lease_seconds: float = 60.0) -> list[uuid.UUID]:
        now = _now()
        due = sorted(
            (
                r
                for r in self.rows.values()
                if r.status in (RefundState.SCHEDULED, RefundState.EXECUTING)
                and r.due_at <= now
                and (r.lease_until is None or r.lease_until < now)
            ),
            key=lambda r: r.due_at,
        )[:limit]
        for row in due:
            row.lease_until = now + timedelta(seconds=lease_seconds)
        return [r.id for r in due]


class FakeRentals:
    def __init__(self) -> None:
        self.rows: dict[uuid.UUID, RentalRow] = {}
        self.transitions: list[RentalTransitionRow] = []

    async def add(self, rental: RentalRow) -> None:
        self.rows.setdefault(rental.order_id, rental)

    async def lock(self, order_id: uuid.UUID) -> RentalRow | None:
        return self.rows.get(order_id)

    async def get(self, order_id: uuid.UUID) -> RentalRow | None:
        return self.rows.get(order_id)

    async def by_subscription(self, subscription_id: str) -> RentalRow | None:
        return next((r for r in self.rows.values() if r.subscription_id == subscription_id), None)

    def record(self, transition: RentalTransitionRow) -> None:
        self.transitions.append(transition)

    async def lease_due(self, *, limit: int, lease_seconds: float) -> list[uuid.UUID]:
        now = _now()
        due = sorted(
            (
                r
                for r in self.rows.values()
                if r.due_at is not None and r.due_at <= now and (r.due_lease_until is None or r.due_lease_until < now)
            ),
            key=lambda r: r.due_at or now,
        )[:limit]
        for row in due:
            row.due_lease_until = now + timedelta(seconds=lease_seconds)
        return [r.order_id for r in due]

    async def lease_unsynced(self, *, older_than: datetime, limit: int) -> list[uuid.UUID]:
        due = [
            r
            for r in self.rows.values()
            if r.subscription_id and r.phase != "ended" and (r.synced_at is None or r.synced_at < older_than)
        ][:limit]
        for row in due:
            row.synced_at = _now()
        return [r.order_id for r in due]

    async def history(self, order_id: uuid.UUID) -> list[RentalTransitionRow]:
        return sorted((t for t in self.transitions if t.order_id == order_id), key=lambda t: (t.version, t.at))

    payments: dict[uuid.UUID, PaymentRow] | None = None
    """The payments' rows, for ``book`` (set by ``FakePaymentDatabase``)."""

    async def subscription_rentals(self, *, limit: int) -> list[uuid.UUID]:
        rows = [r for r in self.rows.values() if r.subscription_id and r.phase != "ended"]
        rows.sort(key=lambda r: (r.synced_at is not None, r.synced_at or _now(), str(r.order_id)))
        return [r.order_id for r in rows[:limit]]

    async def book(self) -> list[RentalBookRow]:
        groups: dict[tuple[str, str, str | None, str | None, int], list[int]] = {}
        for rental in self.rows.values():
            payment = (self.payments or {}).get(rental.order_id)
            billing = (payment.order_snapshot.get("billing") or {}) if payment else {}
            key = (
                str(rental.phase),
                rental.kind,
                payment.currency if payment else None,
                billing.get("interval"),
                int(billing.get("interval_count") or 1),
            )
            counted = groups.setdefault(key, [0, 0])
            counted[0] += 1
            counted[1] += payment.amount if payment else 0
        return [RentalBookRow(*key, rentals=n, amount=total) for key, (n, total) in groups.items()]


class FakeStripeCustomers:
    def __init__(self) -> None:
        self.rows: dict[str, StripeCustomerRow] = {}

    async def lock_or_create(self, user_id: str, idempotency_key: str) -> StripeCustomerRow:
        return self.rows.setdefault(user_id, StripeCustomerRow(user_id=user_id, idempotency_key=idempotency_key))


class FakePaymentDatabase:
    """payment-service's rows in memory, shared by every unit of work made from it (``unit_of_work`` is a
    factory, as bootstrap's is): a handler that opens a second unit of work after a commit sees the same
    rows. Rows are changed in place; a rollback does not undo them (tests assert what was committed)."""

    def __init__(self) -> None:
        self.checkout_sessions = FakeCheckoutSessions()
        self.payments = FakePayments(self.checkout_sessions)
        self.stripe_events = FakeStripeEvents()
        self.refunds = FakeRefunds()
        self.rentals = FakeRentals()
        self.stripe_customers = FakeStripeCustomers()
        self.units: list[FakePaymentUnitOfWork] = []
        self.rentals.payments = self.payments.rows

    def unit_of_work(self) -> FakePaymentUnitOfWork:
        uow = FakePaymentUnitOfWork(self)
        self.units.append(uow)
        return uow

    def events(self, kind: type[E]) -> list[E]:
        """The events of type ``kind`` committed by any of its units of work, in commit order per unit."""
        return [event for uow in self.units for event in uow.events(kind)]

    @property
    def commits(self) -> int:
        return sum(uow.commits for uow in self.units)


class FakePaymentUnitOfWork(FakeUnitOfWork, PaymentUnitOfWork):
    def __init__(self, database: FakePaymentDatabase | None = None) -> None:
        super().__init__()
        self.database = database or FakePaymentDatabase()
        self.payments = self.database.payments
        self.checkout_sessions = self.database.checkout_sessions
        self.stripe_events = self.database.stripe_events
        self.refunds = self.database.refunds
        self.rentals = self.database.rentals
        self.stripe_customers = self.database.stripe_customers


__all__ = [
    "Db",
    "FakeCheckoutSessions",
    "FakePaymentDatabase",
    "FakePaymentUnitOfWork",
    "FakePayments",
    "FakeRefunds",
    "FakeRentals",
    "FakeStripeCustomers",
    "FakeStripeEvents",
    "Orders",
]
