"""Applying one stored Stripe event exactly once: the runner around the Stripe handler table.

The webhook stored the event (``service_layer.event_intake``); the webhook worker leases due ones and
hands each to ``StoredEventRunner.run``, which is the only code that knows about the stored event (as
eShop's ``IdentifiedCommandHandler`` wraps its command handlers). The handlers in the table
(``service_layer.handlers.stripe_handlers``) see only the session and the unit of work:

1. the session is retrieved from Stripe, outside any transaction (the event's snapshot is never trusted
   for the current state; Stripe answering 404 keeps the event for later);
2. ``domain.stripe_events.handled_as`` picks the handler (a session Stripe reports paid is fulfilled
   whatever the event type);
3. one unit of work locks the stored event, runs the handler, marks the event ``processed`` with the
   handler's outcome, and commits: the effects, their outbox rows and the mark together. A crash before
   that commit leaves the event pending with no effect, and it is applied again; an event found already
   processed (a second worker after a lease ran out) applies nothing (outcome ``duplicate_event``).

An event that cannot be applied yet (``RetryLater``: its order is not known here yet) or whose handler
failed stays ``pending`` with a backoff, so nothing is acknowledged and then dropped; after three days
(Stripe's own retry window) it is ``abandoned`` and logged as an error.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime

from spawnpoint_kit import tracing
from spawnpoint_kit.logs import get_logger, log_context

from ..adapters.repositories import ClaimedEvent
from ..adapters.stripe_gateway import BillingGateway, CheckoutGateway, CheckoutSession, Subscription, is_not_found
from ..domain.rental import RentalPolicy
from ..domain.stripe_events import (
    MONEY_BACK_TYPES,
    STORED_EVENT,
    RetryLater,
    StoredEventStatus,
    StoredEventTrigger,
    gives_up,
    handled_as,
    retry_delay,
)
from ..metrics import EVENTS_APPLIED, type_label
from . import money_back, rentals
from .unit_of_work import PaymentUnitOfWork

log = get_logger(__name__)

StripeHandler = Callable[[CheckoutSession, PaymentUnitOfWork], Awaitable[str]]
"""``async def handle(checkout_session, uow) -> outcome``: applies a freshly retrieved session in the open
unit of work (it never commits; the runner does)."""

StripeHandlers = Mapping[str, StripeHandler]
"""Stored Stripe event type -> its handler."""

DUPLICATE_EVENT = "duplicate_event"


class StoredEventRunner:
    def __init__(
        self,
        handlers: StripeHandlers,
        unit_of_work: Callable[[], PaymentUnitOfWork],
        gateway: CheckoutGateway,
        *,
        billing: BillingGateway | None = None,
        rental_policy: RentalPolicy | None = None,
    ) -> None:
        self._handlers = handlers
        self._unit_of_work = unit_of_work
        self._gateway = gateway
        self._billing = billing
        self._rental_policy = rental_policy or RentalPolicy()

    async def run(self, event: ClaimedEvent) -> bool:
        """Apply one leased event, recording a failure for a later attempt; True when it is done.

        With tracing on, in a span that continues the checkout's trace (its context came back from Stripe in
        the session's metadata), so OrderPaid and everything after it belong to the order's trace."""
        if not tracing.ENABLED:
            return await self._run(event)
        attributes = {"spawnpoint.stripe_event_id": event.id, "spawnpoint.order_id": event.order_id}
        parent = {"traceparent": event.traceparent, "tracestate": event.tracestate}
        with tracing.span(f"apply {event.type}", parent=parent, kind="consumer", attributes=attributes):
            done = await self._run(event)
            if not done:
                tracing.fail("kept for a later attempt")
            return done

    async def _run(self, event: ClaimedEvent) -> bool:
        with log_context(stripe_event_id=event.id, order_id=event.order_id, stripe_event_type=event.type):
            try:
                outcome = await self.apply(event)
            except RetryLater as exc:
                log.info("stripe event kept for retry", reason=str(exc), attempts=event.attempts + 1)
                EVENTS_APPLIED.labels(type_label(event.type), "retry").inc()
                await self._record_failure(event.id, exc)
                return False
            except Exception as exc:
                log.exception("stripe event failed; will retry", error=repr(exc))
                EVENTS_APPLIED.labels(type_label(event.type), "error").inc()
                await self._record_failure(event.id, exc)
                return False
            EVENTS_APPLIED.labels(type_label(event.type), outcome).inc()
            log.info("stripe event applied", outcome=outcome)
            return True

    async def apply(self, event: ClaimedEvent) -> str:
        """Apply one stored event and return its outcome; raises ``RetryLater`` (or the handler's error) to
        keep it for later, with nothing applied."""
        if event.type in MONEY_BACK_TYPES:
            return await self._apply_money_back(event)
        if event.subscription_id is not None:
            subscription = await self._retrieve_subscription(event.subscription_id)
            return await self._once(
                event,
                lambda uow: rentals.sync_subscription(
                    uow, subscription, policy=self._rental_policy, via="webhook", stripe_event_id=event.id
                ),
            )
        checkout = await self._retrieve(event)
        handler = self._handlers.get(handled_as(event.type, checkout.facts))
        if handler is None:
            raise RetryLater(f"unexpected stored event type {event.type}")
        of_subscription = None
        if checkout.subscription is not None and checkout.status == "complete":
            of_subscription = await self._retrieve_subscription(checkout.subscription)

        async def run(uow: PaymentUnitOfWork) -> str:
            outcome = await handler(checkout, uow)
            if of_subscription is not None:  # a subscription's checkout: its rental starts too
                await rentals.sync_subscription(
                    uow, of_subscription, policy=self._rental_policy, via="webhook", stripe_event_id=event.id
                )
            return outcome

        return await self._once(event, run)

    async def _apply_money_back(self, event: ClaimedEvent) -> str:
        """A refund or dispute: its order found and its object read from Stripe, then the policy, once."""
        if self._billing is None:
            raise RetryLater("this process has no Stripe Billing gateway")
        billing = self._billing
        async with self._unit_of_work() as uow:
            stored = await uow.stripe_events.lock(event.id)
            payload = dict(stored.payload) if stored is not None else {}
            await uow.commit()
        money = await money_back.read(billing, event.type, payload, self._unit_of_work)

        async def run(uow: PaymentUnitOfWork) -> str:
            outcome, to_end = await money_back.apply(uow, money, policy=self._rental_policy)
            if to_end is not None:
                subscription = to_end

                async def end_subscription() -> None:
                    try:
                        await billing.cancel_subscription(subscription, idempotency_key=f"end:{subscription}")
                    except Exception as exc:  # the reconciler sees it still live; an operator ends it
                        log.error("could not end the subscription of a refunded or lost rental", error=repr(exc))

                uow.after_commit(end_subscription)
            return outcome

        return await self._once(event, run)

    async def _once(self, event: ClaimedEvent, run: Callable[[PaymentUnitOfWork], Awaitable[str]]) -> str:
        """Run ``run`` in one unit of work with the stored event's ``processed`` mark, unless another worker
        already did (``duplicate_event``)."""
        uow = self._unit_of_work()
        async with uow:
            status = await uow.stripe_events.lock_status(event.id)
            processed = STORED_EVENT.next(status, StoredEventTrigger.APPLIED) if status is not None else None
            if processed is None:
                await uow.commit()
                return DUPLICATE_EVENT
            outcome = await run(uow)
            await uow.stripe_events.mark(event.id, status=processed, outcome=outcome, at=datetime.now(UTC))
            await uow.commit()
        return outcome

    async def _retrieve(self, event: ClaimedEvent) -> CheckoutSession:
        if not event.session_id:
            raise RetryLater("the stored event names no session")
        try:
            return await self._gateway.retrieve_checkout_session(event.session_id)
        except Exception as exc:
            if is_not_found(exc):
                raise RetryLater(f"Stripe does not know session {event.session_id}") from exc
            raise

    async def _retrieve_subscription(self, subscription_id: str) -> Subscription:
        if self._billing is None:
            raise RetryLater("this process has no Stripe Billing gateway")
        try:
            return await self._billing.retrieve_subscription(subscription_id)
        except Exception as exc:
            if is_not_found(exc):
                raise RetryLater(f"Stripe does not know subscription {subscription_id}") from exc
            raise

    async def _record_failure(self, event_id: str, error: Exception) -> None:
        """Keep the event pending with a backoff, or give up on it after three days of failures."""
        uow = self._unit_of_work()
        async with uow:
            row = await uow.stripe_events.lock(event_id)
            if row is not None and row.status == StoredEventStatus.PENDING:
                now = datetime.now(UTC)
                row.attempts += 1
                row.last_error = f"{type(error).__name__}: {error}"[:2000]
                row.next_attempt_at = now + retry_delay(row.attempts)
                if gives_up(row.received_at, now):
                    STORED_EVENT.transition(row, StoredEventTrigger.GIVEN_UP)
                    row.outcome = "abandoned"
                    log.error("stripe event abandoned after three days of retries", error=row.last_error)
            await uow.commit()
