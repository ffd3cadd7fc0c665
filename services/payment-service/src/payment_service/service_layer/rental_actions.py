"""What a customer may do with their rental: cancel at the period end and take it back, open Stripe's
customer portal, change plan.

Each action is a Stripe call first (with an idempotency key from the rental's version, so a retried
request is the same request), and then the subscription Stripe answered is synced exactly as a webhook
would sync it (``service_layer.rentals.sync_subscription``, ``via=customer``): the customer sees the new
state at once, and the webhook that follows finds nothing left to change. Only the owner may act; anyone
else's order is "not found", as everywhere else.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from spawnpoint_contracts import OrderSnapshot, RentalCause, RentalPhase
from spawnpoint_kit.auth import Principal
from spawnpoint_kit.logs import get_logger

from ..adapters.order_client import PlanQuote
from ..adapters.stripe_gateway import BillingGateway, Subscription
from ..adapters.tables import RentalRow
from ..domain.rental import Assessment, RentalPolicy
from .rentals import record, rental_of, state_of, sync_subscription
from .unit_of_work import PaymentUnitOfWork

log = get_logger(__name__)


class RentalNotFound(Exception):
    """No rental of this caller's for that order."""


class NotChangeable(Exception):
    """The rental cannot take this action in its state (a 409 names why)."""


class PlanQuotes(Protocol):
    async def quote(self, *, game_id: str, plan_id: str, period: str) -> PlanQuote: ...


class RentalActions:
    def __init__(
        self,
        unit_of_work: Callable[[], PaymentUnitOfWork],
        billing: BillingGateway,
        quotes: PlanQuotes,
        policy: RentalPolicy,
        *,
        portal_return_url: str,
    ) -> None:
        self._unit_of_work = unit_of_work
        self._billing = billing
        self._quotes = quotes
        self._policy = policy
        self._portal_return_url = portal_return_url

    async def rental(self, principal: Principal, order_id: uuid.UUID) -> RentalRow:
        """The caller's rental; ``RentalNotFound`` for anyone else's or an unknown order."""
        async with self._unit_of_work() as uow:
            rental = await uow.rentals.get(order_id)
        if rental is None or rental.user_id != principal.user_id:
            raise RentalNotFound(str(order_id))
        return rental

    async def cancel(self, principal: Principal, order_id: uuid.UUID) -> RentalRow:
        """Cancel at the period end: the server runs until what was paid for ends."""
        rental = await self._subscription_rental(principal, order_id)
        if rental.phase == RentalPhase.CANCELLING:
            return rental
        if rental.phase not in (RentalPhase.ACTIVE, RentalPhase.PAST_DUE):
            raise NotChangeable(f"a rental that is {rental.phase.value} cannot be cancelled")
        return await self._update(
            rental, {"cancel_at_period_end": True}, key=f"rental-cancel:{order_id}:{rental.version}"
        )

    async def undo_cancel(self, principal: Principal, order_id: uuid.UUID) -> RentalRow:
        """Take a cancellation back before the period ends: it renews again."""
        rental = await self._subscription_rental(principal, order_id)
        if rental.phase != RentalPhase.CANCELLING:
            raise NotChangeable(f"the rental is {rental.phase.value}, not cancelling")
        return await self._update(
            rental,
            {"cancel_at_period_end": False, "cancel_at": ""},
            key=f"rental-undo-cancel:{order_id}:{rental.version}",
        )

    async def portal(self, principal: Principal, order_id: uuid.UUID, *, return_url: str | None) -> str:
        """A Stripe customer-portal session for the rental's customer (change the card, cancel)."""
        rental = await self._subscription_rental(principal, order_id)
        if rental.customer_id is None:
            raise NotChangeable("the rental has no Stripe customer yet")
        return await self._billing.create_portal_session(
            customer=rental.customer_id, return_url=return_url or self._portal_return_url, flow=None
        )

    async def change_plan(self, principal: Principal, order_id: uuid.UUID, plan_id: str) -> RentalRow:
        """A new plan for the same period: Stripe prorates the rest of the period on the next invoice, and
        the panel is asked for the new plan's limits (``DesiredServerStateChanged`` with the new build)."""
        rental = await self._subscription_rental(principal, order_id)
        if rental.phase != RentalPhase.ACTIVE:
            raise NotChangeable(f"the plan of a rental that is {rental.phase.value} cannot be changed")
        if plan_id == rental.plan_id:
            return rental
        async with self._unit_of_work() as uow:
            payment = await uow.payments.get(order_id)
        if payment is None:  # a rental always has its payment
            raise RentalNotFound(str(order_id))
        snapshot = OrderSnapshot.model_validate(payment.order_snapshot)
        billing = snapshot.billing
        if billing is None or billing.interval is None or rental.subscription_id is None:
            raise NotChangeable("only a subscription rental can change plan")
        quote = await self._quotes.quote(game_id=snapshot.game_id, plan_id=plan_id, period=rental.period_id)
        (item, *_) = await self._billing.subscription_items(rental.subscription_id)
        price = item.get("price") or {}
        params: dict[str, Any] = {
            "items": [
                {
                    "id": item["id"],
                    "price_data": {
                        "currency": quote.currency,
                        "product": price.get("product"),
                        "unit_amount": quote.amount,
                        "recurring": {"interval": billing.interval, "interval_count": billing.interval_count},
                    },
                }
            ],
            "proration_behavior": "create_prorations",
            "metadata": {"serverOrderId": str(order_id), "plan_id": quote.plan_id},
        }
        subscription = await self._billing.update_subscription(
            rental.subscription_id, params, idempotency_key=f"rental-plan:{order_id}:{rental.version}:{plan_id}"
        )
        now = datetime.now(UTC)
        async with self._unit_of_work() as uow:
            payment = await uow.payments.lock(order_id)
            if payment is None:
                raise RentalNotFound(str(order_id))
            await sync_subscription(uow, subscription, policy=self._policy, via="customer", now=now)
            locked = await rental_of(uow, payment)
            locked.plan_id = quote.plan_id
            locked.limits = {
                "limits": quote.limits.model_dump(mode="json"),
                "feature_limits": quote.feature_limits.model_dump(mode="json"),
            }
            state = state_of(locked)
            record(
                uow,
                locked,
                payment,
                Assessment(state, ((RentalCause.PLAN_CHANGED, state.phase),)),
                via="customer",
                now=now,
                policy=self._policy,
                amount=quote.amount,
                currency=quote.currency,
            )
            await uow.commit()
        log.info("plan changed", order_id=str(order_id), plan_id=quote.plan_id)
        return await self._fresh(order_id)

    async def _subscription_rental(self, principal: Principal, order_id: uuid.UUID) -> RentalRow:
        rental = await self.rental(principal, order_id)
        if rental.kind != "subscription" or rental.subscription_id is None:
            raise NotChangeable("only a subscription rental can do that (a fixed term is extended by paying again)")
        return rental

    async def _update(self, rental: RentalRow, params: dict[str, Any], *, key: str) -> RentalRow:
        if rental.subscription_id is None:
            raise NotChangeable("the rental has no subscription")
        subscription: Subscription = await self._billing.update_subscription(
            rental.subscription_id, params, idempotency_key=key
        )
        async with self._unit_of_work() as uow:
            await sync_subscription(uow, subscription, policy=self._policy, via="customer")
            await uow.commit()
        return await self._fresh(rental.order_id)

    async def _fresh(self, order_id: uuid.UUID) -> RentalRow:
        async with self._unit_of_work() as uow:
            fresh = await uow.rentals.get(order_id)
        if fresh is None:  # rentals are never deleted
            raise RentalNotFound(str(order_id))
        return fresh
