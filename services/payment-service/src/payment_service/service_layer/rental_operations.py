"""What an operator sees of a rental and can do about it (``spawnctl rental show|reconcile``).

- ``show``: the rental as recorded, its history (``rental_transitions``) and the invoices Stripe has for its
  subscription, read live (a Stripe that cannot answer leaves the invoices out, with the reason: the
  recorded state is still worth seeing).
- ``reconcile``: the reconciler's round now, over every subscription rental or one. A dry run reads Stripe
  and reports what ``domain.rental.assess`` would change, writing nothing; otherwise each order goes
  through ``RentalReconciler.reconcile`` (the same path as the background round, ``via=reconciler``).
  Changes found mean webhooks were lost, exactly as the background round's.

The database is read through the unit of work only; Stripe through the gateway.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Protocol

from ..adapters.stripe_gateway import Subscription, is_not_found
from ..adapters.tables import PaymentRow, RentalRow, RentalTransitionRow
from ..domain.rental import InvoiceFacts, RentalPolicy, assess
from .rental_deadlines import RentalReconciler
from .rentals import state_of
from .unit_of_work import PaymentUnitOfWork


class RentalReads(Protocol):
    """The Stripe reads an operator's view needs (``StripeGateway`` has them)."""

    async def retrieve_subscription(self, subscription_id: str) -> Subscription: ...
    async def list_invoices(self, subscription_id: str) -> list[InvoiceFacts]: ...


@dataclass(frozen=True)
class RentalView:
    rental: RentalRow
    payment: PaymentRow | None
    history: list[RentalTransitionRow]
    invoices: list[InvoiceFacts] | None
    """Newest first, as Stripe lists them; None when there is no subscription or Stripe did not answer."""
    invoices_error: str | None = None


@dataclass(frozen=True)
class ReconcileResult:
    order_id: uuid.UUID
    subscription_id: str | None
    before: str
    after: str
    causes: tuple[str, ...]
    """The moves of the table, in order (empty: nothing a customer would be told about changed)."""
    outcome: str
    """changed, unchanged, no_subscription (Stripe has none for it yet), unknown_subscription, error."""
    paid_through_before: datetime | None = None
    paid_through_after: datetime | None = None
    error: str | None = None


@dataclass(frozen=True)
class ReconcileReport:
    dry_run: bool
    results: list[ReconcileResult]
    truncated: bool
    """More subscription rentals than the limit: run again (the least recently read go first)."""

    @property
    def changed(self) -> int:
        return sum(r.outcome == "changed" for r in self.results)

    @property
    def failed(self) -> int:
        return sum(r.outcome == "error" for r in self.results)


class RentalNotFound(Exception):
    pass


class RentalOperations:
    def __init__(
        self,
        unit_of_work: Callable[[], PaymentUnitOfWork],
        stripe: RentalReads,
        reconciler: RentalReconciler,
        policy: RentalPolicy,
        *,
        concurrency: int = 4,
    ) -> None:
        self._unit_of_work = unit_of_work
        self._stripe = stripe
        self._reconciler = reconciler
        self._policy = policy
        self._concurrency = concurrency

    async def show(self, order_id: uuid.UUID) -> RentalView:
        async with self._unit_of_work() as uow:
            rental = await uow.rentals.get(order_id)
            if rental is None:
                raise RentalNotFound(str(order_id))
            payment = await uow.payments.get(order_id)
            history = await uow.rentals.history(order_id)
        if rental.subscription_id is None:
            return RentalView(rental, payment, history, None)
        try:
            invoices = await self._stripe.list_invoices(rental.subscription_id)
        except Exception as exc:  # an operator's view: the recorded state is shown whatever Stripe says
            return RentalView(rental, payment, history, None, f"Stripe did not list the invoices: {_brief(exc)}")
        return RentalView(rental, payment, history, invoices)

    async def reconcile(
        self, *, dry_run: bool, order_id: uuid.UUID | None = None, limit: int = 1000
    ) -> ReconcileReport:
        truncated = False
        if order_id is not None:
            async with self._unit_of_work() as uow:
                if await uow.rentals.get(order_id) is None:
                    raise RentalNotFound(str(order_id))
            order_ids = [order_id]
        else:
            async with self._unit_of_work() as uow:
                order_ids = await uow.rentals.subscription_rentals(limit=limit + 1)
            truncated = len(order_ids) > limit
            order_ids = order_ids[:limit]
        gate = asyncio.Semaphore(self._concurrency)

        async def one(oid: uuid.UUID) -> ReconcileResult:
            async with gate:
                return await (self._assess(oid) if dry_run else self._apply(oid))

        results = await asyncio.gather(*(one(oid) for oid in order_ids))
        return ReconcileReport(dry_run=dry_run, results=list(results), truncated=truncated)

    async def _read(self, order_id: uuid.UUID) -> RentalRow | None:
        async with self._unit_of_work() as uow:
            return await uow.rentals.get(order_id)

    async def _assess(self, order_id: uuid.UUID) -> ReconcileResult:
        """What the reconciler would do, without doing it: Stripe read, ``assess`` run, nothing written."""
        rental = await self._read(order_id)
        if rental is None:
            return ReconcileResult(order_id, None, "-", "-", (), "error", error="the rental is gone")
        before = state_of(rental)
        base = _unchanged(order_id, rental.subscription_id, before.phase.value, before.paid_through)
        if rental.subscription_id is None:
            return replace(base, outcome="no_subscription")
        try:
            subscription = await self._stripe.retrieve_subscription(rental.subscription_id)
        except Exception as exc:
            if is_not_found(exc):
                return replace(base, outcome="unknown_subscription")
            return replace(base, outcome="error", error=_brief(exc))
        assessment = assess(before, subscription.facts, self._policy, datetime.now(UTC))
        return replace(
            base,
            after=assessment.state.phase.value,
            causes=tuple(cause.value for cause, _ in assessment.steps),
            outcome="changed" if assessment.changed else "unchanged",
            paid_through_after=assessment.state.paid_through,
        )

    async def _apply(self, order_id: uuid.UUID) -> ReconcileResult:
        """The background reconciler's step for one order, now; the causes are the transitions it recorded."""
        rental = await self._read(order_id)
        if rental is None:
            return ReconcileResult(order_id, None, "-", "-", (), "error", error="the rental is gone")
        # plain values: an in-memory unit of work hands out the very row the reconciler then changes
        version = rental.version
        base = _unchanged(order_id, rental.subscription_id, rental.phase.value, rental.paid_through)
        if rental.subscription_id is None:
            return replace(base, outcome="no_subscription")
        try:
            outcome = await self._reconciler.reconcile(order_id)
        except Exception as exc:
            return replace(base, outcome="error", error=_brief(exc))
        async with self._unit_of_work() as uow:
            after = await uow.rentals.get(order_id)
            history = await uow.rentals.history(order_id)
        if after is None:
            return replace(base, outcome="error", error="the rental is gone")
        return replace(
            base,
            after=after.phase.value,
            causes=tuple(t.cause for t in history if t.version > version),
            outcome="changed" if outcome != "no_change" else "unchanged",
            paid_through_after=after.paid_through,
        )


def _unchanged(
    order_id: uuid.UUID, subscription_id: str | None, phase: str, paid_through: datetime | None
) -> ReconcileResult:
    return ReconcileResult(
        order_id,
        subscription_id,
        before=phase,
        after=phase,
        causes=(),
        outcome="unchanged",
        paid_through_before=paid_through,
        paid_through_after=paid_through,
    )


def _brief(exc: Exception) -> str:
    message = getattr(exc, "user_message", None) or str(exc)
    return f"{type(exc).__name__}: {message}"[:300]
