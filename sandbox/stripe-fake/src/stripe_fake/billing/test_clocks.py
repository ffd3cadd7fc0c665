"""``/v1/test_helpers/test_clocks``: simulated time for the customers attached to a clock.

``advance`` answers at once with ``status: advancing`` (and emits
``test_helpers.test_clock.advancing``); the work runs in the background on the event loop: every due
time of the clock's subscriptions and invoices up to the target is processed in order, with the clock
showing that moment, then the clock is ``ready`` at the target (``test_helpers.test_clock.ready``). A
client polls ``retrieve`` until ``status == "ready"``, exactly as against Stripe. Events the clock
generates carry ``request.id = null`` and ``created`` = the simulated time.

Stripe refuses an advance of more than two intervals of the shortest subscription on the clock (two
years without subscriptions); so does the fake. Deleting a clock deletes its customers and everything
they own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from stripe_fake import ids
from stripe_fake.billing.objects import TestClock
from stripe_fake.billing.periods import DAY, add_intervals, two_years_after
from stripe_fake.billing.renewals import RenewalProcessor
from stripe_fake.billing.state import BillingState
from stripe_fake.context import ApiContext
from stripe_fake.errors import invalid_request, missing_param, resource_missing
from stripe_fake.listing import LIST_PARAMS, paginate
from stripe_fake.params import opt_int, opt_str, reject_unknown

logger = logging.getLogger("stripe_fake.test_clocks")

DELETES_AFTER = 30 * DAY
Spawn = Callable[[Coroutine[Any, Any, None]], None]


class TestClockService:
    """Test clocks and their background advancing."""

    __test__ = False  # not a pytest class, despite the name

    def __init__(self, state: BillingState, processor: RenewalProcessor, spawn: Spawn) -> None:
        self._state = state
        self._processor = processor
        self._spawn = spawn

    def create(self, ctx: ApiContext) -> dict[str, Any]:
        """``POST /v1/test_helpers/test_clocks``."""
        params = ctx.params
        reject_unknown(params, {"customer", "expand", "frozen_time", "name"})
        frozen_time = opt_int(params, "frozen_time")
        if frozen_time is None:
            raise missing_param("frozen_time")
        store = self._state.store
        customer_id = opt_str(params, "customer")
        customer = None
        if customer_id is not None:
            customer = store.customers.get(customer_id)
            if customer is None:
                raise resource_missing("customer", customer_id, "customer", status=400)
            if customer.test_clock is not None or store.subscriptions_of(customer.id):
                raise invalid_request(
                    "Only a customer without a test clock and without subscriptions can be attached to a new "
                    "test clock.",
                    "customer",
                )
        clock = TestClock(
            id=ids.new_id("clock_1", 23),
            frozen_time=frozen_time,
            created=ctx.now_int,
            deletes_after=ctx.now_int + DELETES_AFTER,
            name=opt_str(params, "name"),
        )
        store.test_clocks[clock.id] = clock
        if customer is not None:
            customer.test_clock = clock.id
        self._state.emit("test_helpers.test_clock.created", clock.to_dict(), at=clock.frozen_time, request=ctx.cause())
        return clock.to_dict()

    def retrieve(self, ctx: ApiContext, clock_id: str) -> dict[str, Any]:
        """``GET /v1/test_helpers/test_clocks/{id}`` (poll it until ``status`` is ``ready``)."""
        reject_unknown(ctx.params, {"expand"})
        return self.get(clock_id).to_dict()

    def list_clocks(self, ctx: ApiContext) -> dict[str, Any]:
        """``GET /v1/test_helpers/test_clocks``."""
        reject_unknown(ctx.params, LIST_PARAMS)
        clocks = list(reversed(self._state.store.test_clocks.values()))
        return paginate(
            clocks,
            id_of=lambda c: c.id,
            render=lambda c: c.to_dict(),
            params=ctx.params,
            url="/v1/test_helpers/test_clocks",
            kind="test_helpers.test_clock",
        )

    def delete(self, ctx: ApiContext, clock_id: str) -> dict[str, Any]:
        """``DELETE /v1/test_helpers/test_clocks/{id}``: the clock's customers and their objects go too."""
        reject_unknown(ctx.params, set())
        clock = self.get(clock_id)
        store = self._state.store
        customers = {c.id for c in store.customers.values() if c.test_clock == clock.id}
        for table in (store.subscriptions, store.invoices, store.invoice_items, store.payment_methods):
            for key in [k for k, v in table.items() if getattr(v, "customer", None) in customers]:
                del table[key]
        for key in [k for k, v in store.portal_sessions.items() if v.customer in customers]:
            del store.portal_sessions[key]
        for key in [k for k, v in store.invoice_payments.items() if v.invoice not in store.invoices]:
            del store.invoice_payments[key]
        for customer_id in customers:
            del store.customers[customer_id]
        del store.test_clocks[clock.id]
        deleted = {"id": clock.id, "object": "test_helpers.test_clock", "deleted": True}
        self._state.emit("test_helpers.test_clock.deleted", clock.to_dict(), at=clock.frozen_time, request=ctx.cause())
        return deleted

    def advance(self, ctx: ApiContext, clock_id: str) -> dict[str, Any]:
        """``POST /v1/test_helpers/test_clocks/{id}/advance``: validate, answer ``advancing``, work later."""
        params = ctx.params
        reject_unknown(params, {"expand", "frozen_time"})
        clock = self.get(clock_id)
        target = opt_int(params, "frozen_time")
        if target is None:
            raise missing_param("frozen_time")
        if clock.status != "ready":
            raise invalid_request(
                f"The test clock {clock.id} is {clock.status}; wait until its status is `ready` before "
                "advancing it again.",
                code="test_clock_not_ready" if clock.status == "advancing" else None,
            )
        if target <= clock.frozen_time:
            raise invalid_request(
                f"The new frozen_time ({target}) must be later than the test clock's current frozen_time "
                f"({clock.frozen_time}).",
                "frozen_time",
            )
        limit = self.limit(clock)
        if target > limit:
            raise invalid_request(
                f"Cannot advance the test clock to {target}: a test clock can be advanced at most two intervals "
                "of the shortest subscription on it (or two years when it has none) past its current "
                f"frozen_time; the latest allowed frozen_time is {limit}.",
                "frozen_time",
            )
        clock.status = "advancing"
        clock.target_frozen_time = target
        self._state.emit(
            "test_helpers.test_clock.advancing", clock.to_dict(), at=clock.frozen_time, request=ctx.cause()
        )
        self._spawn(self._advance(clock.id, target))
        return clock.to_dict()

    def limit(self, clock: TestClock) -> int:
        """The latest ``frozen_time`` an advance may reach."""
        ends = [
            add_intervals(clock.frozen_time, sub.interval, 2 * sub.interval_count)
            for sub in self._state.store.on_clock(clock.id)
            if sub.live or sub.status == "incomplete"
        ]
        return min(ends) if ends else two_years_after(clock.frozen_time)

    def get(self, clock_id: str) -> TestClock:
        """A clock, or ``No such test_helpers.test_clock``."""
        clock = self._state.store.test_clocks.get(clock_id)
        if clock is None:
            raise resource_missing("test_helpers.test_clock", clock_id, "test_clock")
        return clock

    async def _advance(self, clock_id: str, target: int) -> None:
        """The background half of ``advance``."""
        await asyncio.sleep(self._state.settings.test_clock_advance_seconds)
        clock = self._state.store.test_clocks.get(clock_id)
        if clock is None or clock.status != "advancing":
            return

        def step(moment: int) -> None:
            clock.frozen_time = moment

        try:
            self._processor.run(clock.id, target, on_step=step)
        except Exception:
            logger.exception("advancing test clock %s failed", clock.id)
            clock.status = "internal_failure"
            clock.target_frozen_time = None
            self._state.emit("test_helpers.test_clock.internal_failure", clock.to_dict(), at=clock.frozen_time)
            return
        clock.frozen_time = target
        clock.status = "ready"
        clock.target_frozen_time = None
        self._state.emit("test_helpers.test_clock.ready", clock.to_dict(), at=target)
