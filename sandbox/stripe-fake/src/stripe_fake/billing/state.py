"""What every billing service shares: the objects, the time, the event emitter and the settings.

Time is per object: a customer created with ``test_clock`` lives at that clock's ``frozen_time``, and so
do its subscriptions, invoices and the events about them; everything else lives on the fake's own
clock (real time plus the offset ``POST /_fake/clock/advance`` moves). :meth:`BillingState.now` is the
single place that decides which.
"""

from __future__ import annotations

from typing import Any

from stripe_fake.billing.objects import Customer
from stripe_fake.billing.settings import BillingSettings
from stripe_fake.billing.store import BillingStore
from stripe_fake.clock import FakeClock
from stripe_fake.events import AUTOMATIC, Emitter, RequestInfo
from stripe_fake.models import Event
from stripe_fake.store import Store


class BillingState:
    """Shared state of the billing services."""

    def __init__(
        self,
        store: BillingStore,
        payments: Store,
        clock: FakeClock,
        emitter: Emitter,
        settings: BillingSettings,
    ) -> None:
        self.store = store
        self.payments = payments
        self.clock = clock
        self._emitter = emitter
        self.default_settings = settings
        self.settings = settings

    def now(self, test_clock: str | None) -> int:
        """Current time for objects on ``test_clock`` (``None``: the fake clock)."""
        if test_clock is not None:
            clock = self.store.test_clocks.get(test_clock)
            if clock is not None:
                return clock.frozen_time
        return self.clock.now_int()

    def now_for_customer(self, customer_id: str) -> int:
        """Current time for a customer's objects."""
        customer = self.store.customers.get(customer_id)
        return self.now(customer.test_clock if customer is not None else None)

    def customer(self, customer_id: str) -> Customer:
        """A customer that must exist (internal references are always valid)."""
        return self.store.customers[customer_id]

    def emit(
        self,
        event_type: str,
        obj: dict[str, Any],
        *,
        at: int,
        request: RequestInfo = AUTOMATIC,
        previous: dict[str, Any] | None = None,
    ) -> Event:
        """Emit an event stamped ``at`` (the simulated time of the object it is about)."""
        return self._emitter(event_type, obj, request=request, created=at, previous_attributes=previous)

    def reset(self) -> None:
        """Forget all billing data and restore the configured settings."""
        self.store.clear()
        self.settings = self.default_settings


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """``previous_attributes``: the old values of the keys that changed.

    Hashes are compared key by key and only their changed keys are listed, as Stripe does; lists (and
    list objects such as a subscription's ``items``) are given whole.
    """
    previous: dict[str, Any] = {}
    for key, new in after.items():
        old = before.get(key)
        if old == new:
            continue
        if isinstance(old, dict) and isinstance(new, dict) and old.get("object") != "list":
            keys = list(old) + [k for k in new if k not in old]
            previous[key] = {sub: old.get(sub) for sub in keys if old.get(sub) != new.get(sub)}
        else:
            previous[key] = old
    return previous
