"""payment-service's unit of work: the kit's, with payments, checkout sessions, stored Stripe events and
refunds.

The repositories are described here as protocols (what the handlers, use cases and jobs need);
``adapters/repositories.py`` implements them on PostgreSQL and ``payment_service.testing`` in memory.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Protocol

from sqlmodel.ext.asyncio.session import AsyncSession

from spawnpoint_kit.unit_of_work import SqlUnitOfWork, UnitOfWork

from ..adapters.repositories import (
    CheckoutSessionRepository,
    ClaimedEvent,
    PaymentRepository,
    RefundRepository,
    RentalBookRow,
    RentalRepository,
    StripeCustomerRepository,
    StripeEventRepository,
)
from ..adapters.tables import (
    CheckoutSessionRow,
    PaymentRow,
    RefundRow,
    RentalRow,
    RentalTransitionRow,
    StripeCustomerRow,
    StripeEventRow,
)
from ..domain.payment import PaymentStatus


class Payments(Protocol):
    async def add(self, payment: PaymentRow) -> bool: ...
    async def get(self, order_id: uuid.UUID) -> PaymentRow | None: ...
    async def by_payment_intent(self, payment_intent: str) -> PaymentRow | None: ...
    async def lock(self, order_id: uuid.UUID) -> PaymentRow | None: ...
    async def claim_for_sweep(
        self, *, statuses: Iterable[PaymentStatus], cutoff: datetime, limit: int, now: datetime
    ) -> list[uuid.UUID]: ...


class CheckoutSessions(Protocol):
    def add(self, row: CheckoutSessionRow) -> None: ...
    async def lock(self, row_id: uuid.UUID) -> CheckoutSessionRow | None: ...
    async def by_stripe_id(self, session_id: str) -> CheckoutSessionRow | None: ...
    async def latest(self, order_id: uuid.UUID) -> CheckoutSessionRow | None: ...
    async def of_order(self, order_id: uuid.UUID) -> list[CheckoutSessionRow]: ...


class StripeEvents(Protocol):
    async def add_many(self, rows: list[dict[str, Any]]) -> set[str]: ...
    async def claim_due(self, *, limit: int, lease_seconds: float = 60.0) -> list[ClaimedEvent]: ...
    async def lock(self, event_id: str) -> StripeEventRow | None: ...
    async def retry_waiting(self, order_id: uuid.UUID) -> None: ...
    async def prune(self, *, before: datetime, limit: int) -> int: ...


class Refunds(Protocol):
    async def add(self, refund: RefundRow) -> bool: ...
    async def get(self, refund_id: uuid.UUID) -> RefundRow | None: ...
    async def lock(self, refund_id: uuid.UUID) -> RefundRow | None: ...
    async def lock_by_key(self, key: str) -> RefundRow | None: ...
    async def of_order(self, order_id: uuid.UUID) -> list[RefundRow]: ...
    async def claim_due(self, *, limit: int, lease_seconds: float = 60.0) -> list[uuid.UUID]: ...


class Rentals(Protocol):
    async def add(self, rental: RentalRow) -> None: ...
    async def lock(self, order_id: uuid.UUID) -> RentalRow | None: ...
    async def get(self, order_id: uuid.UUID) -> RentalRow | None: ...
    async def by_subscription(self, subscription_id: str) -> RentalRow | None: ...
    def record(self, transition: RentalTransitionRow) -> None: ...
    async def lease_due(self, *, limit: int, lease_seconds: float) -> list[uuid.UUID]: ...
    async def lease_unsynced(self, *, older_than: datetime, limit: int) -> list[uuid.UUID]: ...
    async def history(self, order_id: uuid.UUID) -> list[RentalTransitionRow]: ...
    async def subscription_rentals(self, *, limit: int) -> list[uuid.UUID]: ...
    async def book(self) -> list[RentalBookRow]: ...


class StripeCustomers(Protocol):
    async def lock_or_create(self, user_id: str, idempotency_key: str) -> StripeCustomerRow: ...


class PaymentUnitOfWork(UnitOfWork):
    """What payment-service's handlers, use cases and jobs see."""

    payments: Payments
    checkout_sessions: CheckoutSessions
    stripe_events: StripeEvents
    refunds: Refunds
    rentals: Rentals
    stripe_customers: StripeCustomers


class SqlPaymentUnitOfWork(SqlUnitOfWork, PaymentUnitOfWork):
    def _repositories(self, session: AsyncSession) -> None:
        self.payments = PaymentRepository(session)
        self.checkout_sessions = CheckoutSessionRepository(session)
        self.stripe_events = StripeEventRepository(session)
        self.refunds = RefundRepository(session)
        self.rentals = RentalRepository(session)
        self.stripe_customers = StripeCustomerRepository(session)
