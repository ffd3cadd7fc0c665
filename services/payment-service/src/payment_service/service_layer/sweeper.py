"""Reconciliation: what Stripe knows and we were never told (a lost or very late webhook).

Every ``PAYMENT_SWEEP_INTERVAL_SECONDS`` the sweeper takes the orders still waiting for payment
(``pending_payment`` or ``payment_processing``) whose latest checkout session is older than
``PAYMENT_SWEEP_AFTER_SECONDS`` (younger ones are left to the webhook and the return page), least
recently checked first, at most ``PAYMENT_SWEEP_BATCH_SIZE`` per run. For each it retrieves the order's
sessions that may still change and hands them to the same handlers the stored webhook events use, each
in a unit of work of its own: a ``complete`` session is fulfilled (``fulfilled_via = sweeper``), an
``expired`` one expires the order unless another session is still live. An order whose attempts never
reached the customer and whose payment window is over is expired too (no Stripe event will ever come for
it).

So a paid order whose webhook is lost waits at most one interval once its session is older than the
threshold. Each run is independent: a failure for one order is logged and retried at the next run.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from spawnpoint_kit.logs import get_logger, log_context

from ..adapters.stripe_gateway import is_not_found
from ..domain.checkout import SessionRowStatus
from ..domain.payment import AWAITING_PAYMENT
from ..metrics import SWEEPS, SWEPT_SESSIONS
from .fulfilment import Fulfilment, expire, expire_if_nothing_live
from .unit_of_work import PaymentUnitOfWork

log = get_logger(__name__)

CONCURRENCY = 4
"""Orders reconciled at once during a sweep (each holds a database connection while it applies)."""

MAY_CHANGE = frozenset({SessionRowStatus.OPEN, SessionRowStatus.COMPLETE})
"""Our sessions whose state at Stripe may still mean something for the order."""


@dataclass(frozen=True)
class SweepReport:
    orders: int
    sessions: int
    fulfilled: int
    expired: int
    errors: int


class Sweeper:
    def __init__(
        self,
        unit_of_work: Callable[[], PaymentUnitOfWork],
        fulfilment: Fulfilment,
        *,
        after: timedelta,
        batch_size: int,
    ) -> None:
        self._unit_of_work = unit_of_work
        self._fulfilment = fulfilment
        self._after = after
        self._batch = batch_size

    async def candidates(self, now: datetime) -> list[uuid.UUID]:
        uow = self._unit_of_work()
        async with uow:
            ids = await uow.payments.claim_for_sweep(
                statuses=AWAITING_PAYMENT, cutoff=now - self._after, limit=self._batch, now=now
            )
            await uow.commit()
        return ids

    async def sweep(self, now: datetime | None = None) -> SweepReport:
        """One reconciliation pass."""
        current = now or datetime.now(UTC)
        orders = await self.candidates(current)
        limit = asyncio.Semaphore(CONCURRENCY)
        results = await asyncio.gather(*(self._reconcile(order_id, current, limit) for order_id in orders))
        report = SweepReport(
            orders=len(orders),
            sessions=sum(r[0] for r in results),
            fulfilled=sum(r[1] for r in results),
            expired=sum(r[2] for r in results),
            errors=sum(r[3] for r in results),
        )
        SWEEPS.labels("ok" if report.errors == 0 else "partial").inc()
        if report.fulfilled or report.expired or report.errors:
            log.info(
                "sweep reconciled orders",
                orders=report.orders,
                fulfilled=report.fulfilled,
                expired=report.expired,
                errors=report.errors,
            )
        return report

    async def _reconcile(
        self, order_id: uuid.UUID, now: datetime, limit: asyncio.Semaphore
    ) -> tuple[int, int, int, int]:
        checked = fulfilled = expired = errors = 0
        uow = self._unit_of_work()
        async with limit:
            with log_context(order_id=order_id):
                async with uow:
                    session_ids = [
                        row.stripe_session_id
                        for row in await uow.checkout_sessions.of_order(order_id)
                        if row.stripe_session_id and row.status in MAY_CHANGE
                    ]
                for session_id in session_ids:
                    checked += 1
                    try:
                        checkout = await self._fulfilment.retrieve(session_id)
                        if checkout.status == "complete":
                            result = await self._fulfilment.apply(checkout, via="sweeper")
                            fulfilled += result.outcome == "fulfilled"
                            SWEPT_SESSIONS.labels(result.outcome).inc()
                        elif checkout.status == "expired":
                            async with uow:
                                outcome = await expire(checkout, uow)
                                await uow.commit()
                            expired += outcome == "expired"
                            SWEPT_SESSIONS.labels(f"session_{outcome}").inc()
                        else:
                            SWEPT_SESSIONS.labels("open").inc()
                    except Exception as exc:
                        errors += 1
                        SWEPT_SESSIONS.labels("not_found" if is_not_found(exc) else "error").inc()
                        log.warning("sweeper could not reconcile a session", session_id=session_id, error=repr(exc))
                try:
                    async with uow:
                        outcome = await expire_if_nothing_live(order_id, uow, now=now)
                        await uow.commit()
                    if outcome == "expired":
                        expired += 1
                        SWEPT_SESSIONS.labels("never_opened_expired").inc()
                except Exception as exc:
                    errors += 1
                    log.warning("sweeper could not expire an order", error=repr(exc))
        return checked, fulfilled, expired, errors
