"""The composition root: one :class:`StripeFake` holds every piece of state and the delivery worker.

It owns the clock, the objects, the event log, the webhook endpoints, the idempotency store and the
fault rules, and wires the services together (billing included). Its lifecycle (``start``/``stop``)
runs the delivery client and the periodic sweep (session expiry, and renewals of subscriptions on the
fake's own clock); background work such as test-clock advances runs as tasks it keeps, so ``reset``
(``DELETE /_fake/data``) and ``stop`` can cancel it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import Any

from stripe_fake.billing.service import Billing
from stripe_fake.checkout import CheckoutService
from stripe_fake.clock import FakeClock
from stripe_fake.config import FakeConfig
from stripe_fake.events import AUTOMATIC, EventLog, RequestInfo
from stripe_fake.faults import FaultInjector
from stripe_fake.idempotency import IdempotencyStore
from stripe_fake.models import Event
from stripe_fake.payments import PaymentService
from stripe_fake.store import Store
from stripe_fake.webhooks import DeliveryWorker, EndpointRegistry

logger = logging.getLogger("stripe_fake")


class StripeFake:
    """All state and behaviour of one fake Stripe account (test mode)."""

    def __init__(self, config: FakeConfig, clock: FakeClock | None = None) -> None:
        self.config = config
        self.clock = clock or FakeClock()
        self.store = Store()
        self.events = EventLog()
        self.endpoints = EndpointRegistry()
        self.worker = DeliveryWorker(config, self.clock, self.endpoints)
        self.idempotency = IdempotencyStore()
        self.faults = FaultInjector()
        self.payments = PaymentService(self.store)
        self.billing = Billing(
            self.store,
            self.payments,
            self.clock,
            self.emit,
            config.billing_settings(),
            self.spawn,
        )
        self.checkout = CheckoutService(self.store, self.clock, self.emit, self.billing.checkout)
        self._sweeper: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()
        if config.webhook_url:
            self.endpoints.add(
                config.webhook_url,
                [config.webhook_secret],
                config.webhook_events,
                self.clock.now_int(),
                from_config=True,
            )

    def emit(
        self,
        event_type: str,
        obj: dict[str, Any],
        *,
        request: RequestInfo = AUTOMATIC,
        order_id: str | None = None,
        created: int | None = None,
        previous_attributes: dict[str, Any] | None = None,
    ) -> Event:
        """Record an event and start delivering it to every subscribed endpoint."""
        endpoints = self.endpoints.matching(event_type)
        event = self.events.create(
            event_type,
            obj,
            created=self.clock.now_int() if created is None else created,
            request=request,
            pending_endpoints={e.id for e in endpoints},
            order_id=order_id,
            previous_attributes=previous_attributes,
        )
        self.worker.submit(event, endpoints)
        return event

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run background work (a test-clock advance) on the event loop, cancelled by reset and stop."""
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def start(self) -> None:
        """Open the delivery client and start the periodic expiry sweep."""
        await self.worker.start()
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep_forever())

    async def stop(self) -> None:
        """Stop the sweep and cancel pending deliveries."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        await self._cancel_background()
        await self.worker.stop()

    async def reset(self) -> None:
        """Forget all data, deliveries, keys, faults and run-time endpoints; clock back to real time."""
        await self._cancel_background()
        await self.worker.reset()
        self.store.clear()
        self.billing.reset()
        self.events.clear()
        self.idempotency.clear()
        self.faults.clear()
        self.endpoints.reset()
        self.clock.reset()

    def advance_clock(self, seconds: float, *, sweep: bool = True) -> tuple[int, int]:
        """Move the fake clock; by default process what became due right away (as Stripe would soon).

        Returns the number of sessions expired and of billing steps processed (renewals,
        finalizations, retries of subscriptions that are not on a test clock).
        """
        self.clock.advance(seconds)
        if not sweep:
            return 0, 0
        return self.checkout.expire_due(), self.billing.run_fake_clock()

    async def _cancel_background(self) -> None:
        tasks = list(self._background)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.config.expiry_sweep_seconds)
            try:
                self.checkout.expire_due()
                self.billing.run_fake_clock()
            except Exception:  # pragma: no cover - a bug must not stop the sweep
                logger.exception("expiry sweep failed")
