"""Time, not Stripe, moves these: rental deadlines, and the reconciler that catches a lost webhook.

Two jobs, both safe to run in every process at once (their rows are leased with ``SKIP LOCKED``), neither
holding a timer in memory:

- ``RentalDeadlines.run_due``: each rental carries its next deadline (``rentals.due_at``, set with every
  change from ``domain.rental.next_deadline``). When it passes, a subscription is read from Stripe first
  and synced (so a deadline never acts on stale knowledge: a renewal paid at the last minute wins), then
  the deadline's own rule applies: the grace period ends (lapse), a cancelled period ends, a fixed term
  ends, the customer is warned of the deletion, the retention ends (``DesiredServerStateChanged``
  terminated).
- ``RentalReconciler.run``: every subscription rental not read from Stripe for ``interval`` is read and
  synced, least recently first, a batch per run. A webhook lost entirely therefore costs at most one
  interval; a missed ``invoice.paid``, ``payment_failed`` or ``subscription.deleted`` is caught up as
  the same moves of the table (``domain.rental.assess``), recorded with ``via=reconciler``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from spawnpoint_contracts import RentalCause
from spawnpoint_kit.logs import get_logger, log_context

from ..adapters.stripe_gateway import BillingGateway, Subscription, is_not_found
from ..domain.rental import (
    Assessment,
    Deadline,
    RentalPolicy,
    RentalState,
    fixed_term_expired,
    grace_expired,
    retention_over,
    termination_warning,
)
from ..metrics import RENTAL_DEADLINES, RENTAL_RECONCILED
from .rentals import publish_desired, record, rental_of, schedule, state_of, sync_subscription
from .unit_of_work import PaymentUnitOfWork

log = get_logger(__name__)


@dataclass(frozen=True)
class DeadlineOutcome:
    order_id: uuid.UUID
    deadline: str | None
    outcome: str


class RentalDeadlines:
    def __init__(
        self,
        unit_of_work: Callable[[], PaymentUnitOfWork],
        billing: BillingGateway,
        policy: RentalPolicy,
        *,
        batch: int = 50,
        lease_seconds: float = 120.0,
    ) -> None:
        self._unit_of_work = unit_of_work
        self._billing = billing
        self._policy = policy
        self._batch = batch
        self._lease = lease_seconds

    async def run_due(self) -> list[DeadlineOutcome]:
        async with self._unit_of_work() as uow:
            due = await uow.rentals.lease_due(limit=self._batch, lease_seconds=self._lease)
            await uow.commit()
        outcomes = []
        for order_id in due:
            with log_context(order_id=order_id):
                try:
                    outcomes.append(await self.work(order_id))
                except Exception as exc:
                    RENTAL_DEADLINES.labels("unknown", "error").inc()
                    log.warning("rental deadline failed; retried when its lease ends", error=repr(exc)[:300])
        return outcomes

    async def work(self, order_id: uuid.UUID, *, now: datetime | None = None) -> DeadlineOutcome:
        """Work one rental whose deadline passed (its lease is held by this process)."""
        async with self._unit_of_work() as uow:
            rental = await uow.rentals.get(order_id)  # a read: leaving closes it, the row stays readable
        if rental is None or rental.due_kind is None:
            return DeadlineOutcome(order_id, None, "no_deadline")
        subscription = await self._read(rental.subscription_id) if rental.subscription_id else None
        now = now or datetime.now(UTC)
        async with self._unit_of_work() as uow:
            payment = await uow.payments.lock(order_id)
            if payment is None:
                return DeadlineOutcome(order_id, rental.due_kind, "unknown_order")
            if subscription is not None:
                await sync_subscription(uow, subscription, policy=self._policy, via="deadline", now=now)
            rental = await rental_of(uow, payment)
            kind = rental.due_kind
            outcome = "not_due"
            if kind is not None and rental.due_at is not None and rental.due_at <= now:
                rental_state = state_of(rental)
                assessment = self._rule(Deadline(kind), rental_state, now)
                if assessment.changed:
                    outcome = record(uow, rental, payment, assessment, via="deadline", now=now, policy=self._policy)
                elif kind == Deadline.TERMINATION and rental_state.terminate_at and rental_state.terminate_at <= now:
                    published = publish_desired(uow, rental, payment, RentalCause.ENDED, now)
                    schedule(rental, self._policy)
                    outcome = "terminate" if published else "no_change"
                else:
                    schedule(rental, self._policy)
            else:
                schedule(rental, self._policy)  # the sync moved it: a new deadline, or none
            await uow.commit()
        RENTAL_DEADLINES.labels(kind or "none", outcome).inc()
        log.info("rental deadline worked", deadline=kind, outcome=outcome)
        return DeadlineOutcome(order_id, kind, outcome)

    def _rule(self, deadline: Deadline, state: RentalState, now: datetime) -> Assessment:
        if deadline == Deadline.GRACE_END:
            return grace_expired(state, self._policy, now)
        if deadline == Deadline.TERM_END:
            return fixed_term_expired(state, self._policy, now)
        if deadline == Deadline.TERMINATION_WARNING:
            return termination_warning(state)
        if deadline == Deadline.TERMINATION:
            return retention_over(state, now)
        return Assessment(state)  # PERIOD_END: the sync above ended it if Stripe did

    async def _read(self, subscription_id: str) -> Subscription | None:
        try:
            return await self._billing.retrieve_subscription(subscription_id)
        except Exception as exc:
            if is_not_found(exc):
                log.warning("Stripe does not know the rental's subscription", subscription_id=subscription_id)
                return None
            raise


class RentalReconciler:
    def __init__(
        self,
        unit_of_work: Callable[[], PaymentUnitOfWork],
        billing: BillingGateway,
        policy: RentalPolicy,
        *,
        interval: timedelta,
        batch: int = 100,
    ) -> None:
        self._unit_of_work = unit_of_work
        self._billing = billing
        self._policy = policy
        self._interval = interval
        self._batch = batch

    async def run(self) -> int:
        """One round: read and sync the rentals not read for an interval; the number changed."""
        async with self._unit_of_work() as uow:
            order_ids = await uow.rentals.lease_unsynced(
                older_than=datetime.now(UTC) - self._interval, limit=self._batch
            )
            await uow.commit()
        changed = 0
        for order_id in order_ids:
            with log_context(order_id=order_id):
                try:
                    changed += await self.reconcile(order_id) != "no_change"
                except Exception as exc:
                    RENTAL_RECONCILED.labels("error").inc()
                    log.warning("rental reconciliation failed; next round", error=repr(exc)[:300])
        return changed

    async def reconcile(self, order_id: uuid.UUID) -> str:
        async with self._unit_of_work() as uow:
            rental = await uow.rentals.get(order_id)
        if rental is None or rental.subscription_id is None:
            return "no_change"
        try:
            subscription = await self._billing.retrieve_subscription(rental.subscription_id)
        except Exception as exc:
            if is_not_found(exc):
                RENTAL_RECONCILED.labels("unknown_subscription").inc()
                return "no_change"
            raise
        async with self._unit_of_work() as uow:
            outcome = await sync_subscription(uow, subscription, policy=self._policy, via="reconciler")
            await uow.commit()
        RENTAL_RECONCILED.labels("changed" if outcome != "no_change" else "unchanged").inc()
        if outcome != "no_change":
            log.warning("reconciler caught up a rental Stripe had moved (a webhook was lost)", outcome=outcome)
        return outcome
