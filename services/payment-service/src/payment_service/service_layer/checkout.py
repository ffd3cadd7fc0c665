"""Opening a Checkout Session for an order: one open session per order.

``CheckoutService.open_for`` reads the order from order-service with the customer's own token (the amount
comes from the order, never from the client) and opens it only for its owner: anyone else gets
``OrderNotFound``, as for an unknown id, so existence is not leaked. The rules for reusing or replacing a
session are in ``domain.checkout``; this module applies them:

- our latest attempt is ``open``: Stripe is asked for its current state. Still open: its
  ``client_secret`` is handed out again. About to expire: it is expired first, then replaced (if Stripe
  answers that it is ``complete``, the customer paid: no new session, the payment is fulfilled and the
  request answers 409). Expired: replaced. Complete: fulfilled, 409;
- our latest attempt is ``creating`` (an earlier request stored it and did not finish): the stored
  parameters are re-sent under the same idempotency key, so Stripe answers with the session it may
  already have made;
- otherwise a new attempt is stored, every parameter including the computed ``expires_at``, and
  committed before Stripe is called.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from spawnpoint_kit import tracing
from spawnpoint_kit.auth import Principal
from spawnpoint_kit.logs import get_logger

from ..adapters.order_client import OrderNotFound, OrderView
from ..adapters.stripe_gateway import (
    BillingGateway,
    CheckoutGateway,
    CheckoutSession,
    is_refused_parameters,
    not_open_status,
)
from ..adapters.tables import CheckoutSessionRow, PaymentRow
from ..domain.checkout import (
    NextStep,
    RemoteVerdict,
    SessionRowStatus,
    customer_idempotency_key,
    idempotency_key,
    is_subscription,
    mirrored_status,
    next_step,
    session_params,
    verdict,
)
from ..domain.payment import OPEN_FOR_CHECKOUT, PaymentStatus
from .fulfilment import Fulfilment
from .unit_of_work import PaymentUnitOfWork

log = get_logger(__name__)

MAX_ROUNDS = 3
"""A replaced session is re-examined at most this many times in one request."""


class OrderReader(Protocol):
    """order-service, read on the customer's behalf (``adapters.order_client.OrderClient``)."""

    async def get_order(self, order_id: uuid.UUID, *, bearer_token: str) -> OrderView: ...


@dataclass(frozen=True)
class CheckoutConfig:
    return_url: str
    expiry: timedelta
    test_clock_per_customer: bool = False
    """Test mode only: every new Stripe customer gets a test clock of its own, so a rehearsal (or a test)
    can move one customer's time without touching anyone else's."""


@dataclass(frozen=True)
class OpenedCheckout:
    order_id: uuid.UUID
    session_id: str
    client_secret: str
    expires_at: datetime
    reused: bool


class NotPayable(Exception):
    """The order is not waiting for payment (already paid, processing, expired, failed or refunded)."""

    def __init__(self, status: PaymentStatus) -> None:
        super().__init__(f"order is {status.value}")
        self.status = status


class CheckoutUnavailable(Exception):
    """Stripe refused or could not answer; the request may be retried."""


@dataclass(frozen=True)
class _Attempt:
    row_id: uuid.UUID
    step: NextStep
    stripe_session_id: str | None
    client_secret: str | None
    expires_at: datetime
    params: dict[str, object]
    key: str


async def _lock_payment(uow: PaymentUnitOfWork, order: OrderView) -> tuple[PaymentRow, bool]:
    """The order's payment row, created on the first checkout request, locked for this unit of work, and
    whether this request created it. A new one makes the order's stored events that were waiting for it due
    at once."""
    snap = order.snapshot
    now = datetime.now(UTC)
    created = await uow.payments.add(
        PaymentRow(
            order_id=snap.order_id,
            user_id=snap.user_id,
            email=snap.email,
            amount=snap.amount,
            currency=snap.currency.lower(),
            status=PaymentStatus.PENDING_PAYMENT,
            order_snapshot=snap.model_dump(mode="json"),
            correlation_id=order.correlation_id,
            created_at=now,
            updated_at=now,
        )
    )
    if created:
        await uow.stripe_events.retry_waiting(snap.order_id)
    payment = await uow.payments.lock(snap.order_id)
    if payment is None:
        raise RuntimeError(f"the payment of order {snap.order_id} was not stored")
    return payment, created


def _traced(params: dict[str, Any]) -> dict[str, Any]:
    """With tracing on, the session's metadata names this checkout's span (``traceparent``): Stripe sends
    no trace context, so the webhook and the fulfilment join the order's trace through it (docs/tracing.md).
    Stored with the other parameters, so a resend under the same idempotency key is the same request."""
    if tracing.ENABLED:
        params["metadata"] = {**params.get("metadata", {}), **tracing.current_headers()}
    return params


class CheckoutService:
    def __init__(
        self,
        unit_of_work: Callable[[], PaymentUnitOfWork],
        gateway: CheckoutGateway,
        fulfilment: Fulfilment,
        config: CheckoutConfig,
        orders: OrderReader,
        billing: BillingGateway | None = None,
    ) -> None:
        self._unit_of_work = unit_of_work
        self._gateway = gateway
        self._fulfilment = fulfilment
        self._config = config
        self._orders = orders
        self._billing = billing

    async def open_for(self, principal: Principal, order_id: uuid.UUID, *, bearer_token: str) -> OpenedCheckout:
        """The caller's order's open session. Raises ``OrderNotFound`` (also for another customer's order),
        ``OrderServiceUnavailable``, ``NotPayable`` or ``CheckoutUnavailable``."""
        order = await self._orders.get_order(order_id, bearer_token=bearer_token)
        if order.snapshot.user_id != principal.user_id:
            raise OrderNotFound(str(order_id))
        return await self.open(order)

    async def open(self, order: OrderView, *, now: datetime | None = None) -> OpenedCheckout:
        """The order's open session (reused or new). Raises ``NotPayable`` or ``CheckoutUnavailable``."""
        customer = await self._customer_for(order) if is_subscription(order.snapshot) else None
        for _ in range(MAX_ROUNDS):
            current = now or datetime.now(UTC)
            attempt = await self._next_attempt(order, current, customer)
            if attempt.step != NextStep.VERIFY:
                return await self._create(order, attempt)
            if attempt.stripe_session_id is None or attempt.client_secret is None:
                raise RuntimeError("an attempt to verify has no session")  # _next_attempt creates instead
            remote = await self._gateway.retrieve_checkout_session(attempt.stripe_session_id)
            outcome = verdict(remote.status, attempt.expires_at, current)
            if outcome == RemoteVerdict.REUSE:
                return OpenedCheckout(
                    order.snapshot.order_id, remote.id, attempt.client_secret, attempt.expires_at, reused=True
                )
            if outcome == RemoteVerdict.EXPIRE_THEN_REPLACE:
                remote = await self._expire(attempt.stripe_session_id)
            if remote.status == "complete":
                result = await self._fulfilment.apply(remote, via="return_page")
                raise NotPayable(result.status)
            await self._record(attempt.row_id, remote)
        raise CheckoutUnavailable("the order's checkout sessions keep changing; try again")

    async def _customer_for(self, order: OrderView) -> str:
        """The shop user's Stripe customer: made once (the row and its idempotency key are stored before
        Stripe is called, so racing checkouts and a retry after a lost answer get the same customer) and
        reused by every later subscription of theirs."""
        if self._billing is None:
            raise CheckoutUnavailable("subscriptions need Stripe Billing, which this process is not given")
        user_id = order.snapshot.user_id
        uow = self._unit_of_work()
        async with uow:
            row = await uow.stripe_customers.lock_or_create(user_id, customer_idempotency_key(user_id))
            known, key = row.customer_id, row.idempotency_key
            await uow.commit()
        if known:
            return known
        clock = None
        if self._config.test_clock_per_customer:
            clock = await self._billing.create_test_clock(name=f"customer {user_id}", idempotency_key=f"clock:{key}")
        created = await self._billing.create_customer(
            email=order.snapshot.email, user_id=user_id, idempotency_key=key, test_clock=clock
        )
        uow = self._unit_of_work()
        async with uow:
            row = await uow.stripe_customers.lock_or_create(user_id, key)
            row.customer_id = row.customer_id or created
            known = row.customer_id
            await uow.commit()
        return known

    async def _next_attempt(self, order: OrderView, now: datetime, customer: str | None = None) -> _Attempt:
        uow = self._unit_of_work()
        async with uow:
            payment, created = await _lock_payment(uow, order)
            if payment.status not in OPEN_FOR_CHECKOUT:
                raise NotPayable(payment.status)
            # A payment made just now has no attempts yet (they are only ever made after their payment).
            latest = None if created else await uow.checkout_sessions.latest(payment.order_id)
            step = next_step(latest.status if latest else None, latest.expires_at if latest else None, now)
            if step == NextStep.VERIFY and (latest is None or not latest.stripe_session_id or not latest.client_secret):
                step = NextStep.CREATE
            if step == NextStep.CREATE or latest is None:
                if latest is not None and latest.status == SessionRowStatus.CREATING:
                    latest.status = SessionRowStatus.ABANDONED  # past Stripe's window: never re-sent
                number = (latest.attempt + 1) if latest is not None else 1
                expires_at = (now + self._config.expiry).replace(microsecond=0)
                latest = CheckoutSessionRow(
                    order_id=payment.order_id,
                    attempt=number,
                    idempotency_key=idempotency_key(str(payment.order_id), number),
                    params=_traced(
                        session_params(order.snapshot, self._config.return_url, expires_at, customer=customer)
                    ),
                    expires_at=expires_at,
                    status=SessionRowStatus.CREATING,
                )
                uow.checkout_sessions.add(latest)
            attempt = _Attempt(
                row_id=latest.id,
                step=step,
                stripe_session_id=latest.stripe_session_id,
                client_secret=latest.client_secret,
                expires_at=latest.expires_at,
                params=dict(latest.params),
                key=latest.idempotency_key,
            )
            await uow.commit()
        return attempt

    async def _create(self, order: OrderView, attempt: _Attempt) -> OpenedCheckout:
        try:
            created = await self._gateway.create_checkout_session(dict(attempt.params), idempotency_key=attempt.key)
        except Exception as exc:
            if is_refused_parameters(exc):
                await self._abandon(attempt.row_id, str(exc))
            raise
        if not created.client_secret:
            raise CheckoutUnavailable("Stripe returned a session without a client_secret")
        status = await self._record(attempt.row_id, created)
        if status not in OPEN_FOR_CHECKOUT:
            # Paid (for example through a session made elsewhere) while this one was being created: it must
            # not reach the customer. Expire it; if it was somehow completed, that payment is applied too.
            closed = await self._expire(created.id)
            if closed.status == "complete":
                await self._fulfilment.apply(closed, via="return_page")
            await self._record(attempt.row_id, closed)
            raise NotPayable(status)
        log.info("checkout session opened", order_id=str(order.snapshot.order_id), session_id=created.id)
        return OpenedCheckout(
            order.snapshot.order_id, created.id, created.client_secret, attempt.expires_at, reused=False
        )

    async def _expire(self, session_id: str) -> CheckoutSession:
        """Expire a session we are about to replace; Stripe's 400 for a non-open one is answered by
        retrieving it (it may have been paid meanwhile)."""
        try:
            return await self._gateway.expire_checkout_session(session_id)
        except Exception as exc:
            if not_open_status(exc) is None:
                raise
            return await self._gateway.retrieve_checkout_session(session_id)

    async def _record(self, row_id: uuid.UUID, remote: CheckoutSession) -> PaymentStatus:
        """Store what Stripe answered for an attempt; returns the payment's status at that moment."""
        uow = self._unit_of_work()
        async with uow:
            row = await uow.checkout_sessions.lock(row_id)
            if row is None:
                raise RuntimeError(f"checkout attempt {row_id} vanished")
            row.stripe_session_id = remote.id
            row.client_secret = remote.client_secret or row.client_secret
            if (mirrored := mirrored_status(row.status, remote.status)) is not None:
                row.status = mirrored
            status = await uow.payments.status_of(row.order_id)
            if status is None:
                raise RuntimeError(f"checkout attempt {row_id} has no payment")
            await uow.commit()
        return status

    async def _abandon(self, row_id: uuid.UUID, why: str) -> None:
        uow = self._unit_of_work()
        async with uow:
            row = await uow.checkout_sessions.lock(row_id)
            if row is not None and row.status == SessionRowStatus.CREATING:
                row.status = SessionRowStatus.ABANDONED
                log.error("Stripe refused the stored checkout parameters; attempt abandoned", error=why[:500])
            await uow.commit()
