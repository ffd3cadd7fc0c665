"""Helpers for the billing contract tests: the steps every scenario repeats, through the SDK."""

from __future__ import annotations

from typing import Any

import stripe

from stripe_fake.testing import FakeStripeControl, wait_until

START = 1_768_478_400
"""2026-01-15 12:00:00 UTC: test clocks start here, so periods and dates are deterministic."""
DAY = 86_400


class BillingKit:
    """What billing tests do over and over, through the official SDK and the control API."""

    def __init__(self, client: stripe.StripeClient, control: FakeStripeControl) -> None:
        self.client = client
        self.control = control

    def price(
        self,
        amount: int = 1500,
        *,
        interval: str = "month",
        name: str = "Game server Pro",
        lookup_key: str | None = None,
    ) -> str:
        """A recurring EUR price (and its product)."""
        product = self.client.v1.products.create({"name": name})
        params: Any = {
            "product": product.id,
            "currency": "eur",
            "unit_amount": amount,
            "recurring": {"interval": interval},
        }
        if lookup_key is not None:
            params["lookup_key"] = lookup_key
        price_id: str = self.client.v1.prices.create(params).id
        return price_id

    def clock(self, frozen_time: int = START) -> str:
        """A test clock."""
        clock_id: str = self.client.v1.test_helpers.test_clocks.create({"frozen_time": frozen_time}).id
        return clock_id

    def customer(self, clock: str | None = None, email: str = "player@example.test") -> str:
        """A customer, on ``clock`` if given."""
        params: Any = {"email": email, "name": "Ada Player"}
        if clock is not None:
            params["test_clock"] = clock
        customer_id: str = self.client.v1.customers.create(params).id
        return customer_id

    def session_params(self, price: str, customer: str | None = None, **overrides: Any) -> Any:
        """Subscription-mode embedded Checkout parameters (reference §2)."""
        params: dict[str, Any] = {
            "mode": "subscription",
            "ui_mode": "embedded_page",
            "line_items": [{"price": price, "quantity": 1}],
            "client_reference_id": "user_42",
            "metadata": {"user_id": "42"},
            "subscription_data": {"metadata": {"user_id": "42"}},
            "return_url": "https://app.example.test/billing/return?session_id={CHECKOUT_SESSION_ID}",
        }
        if customer is not None:
            params["customer"] = customer
        else:
            params["customer_email"] = "new@example.test"
        params.update(overrides)
        return params

    def subscribe(
        self, price: str, customer: str | None = None, payment_method: str | None = None, **overrides: Any
    ) -> stripe.Subscription:
        """Checkout for ``price`` completed with ``payment_method``; the resulting subscription."""
        session = self.client.v1.checkout.sessions.create(self.session_params(price, customer, **overrides))
        self.control.pay(session.id, payment_method=payment_method)
        done = self.client.v1.checkout.sessions.retrieve(session.id)
        assert done.status == "complete" and done.subscription is not None
        return self.client.v1.subscriptions.retrieve(str(done.subscription))

    def advance(self, clock: str, frozen_time: int) -> stripe.test_helpers.TestClock:
        """Advance a clock and poll ``retrieve`` (as an SDK user would) until it is ready."""
        advancing = self.client.v1.test_helpers.test_clocks.advance(clock, {"frozen_time": frozen_time})
        assert advancing.status in ("advancing", "ready")

        def ready() -> stripe.test_helpers.TestClock | None:
            current = self.client.v1.test_helpers.test_clocks.retrieve(clock)
            return current if current.status == "ready" else None

        return wait_until(ready, timeout=10, message=f"test clock {clock} ready")

    def period_end(self, subscription: str) -> int:
        """The current period end (basil+: on the items)."""
        sub = self.client.v1.subscriptions.retrieve(subscription)
        return max(item.current_period_end for item in sub.items.data)

    def mark(self) -> int:
        """How many events exist now (to look only at later ones)."""
        return len(self.control.events())

    def events_since(self, mark: int, *, billing_only: bool = True) -> list[dict[str, Any]]:
        """Events emitted after ``mark``, oldest first (without the clock's own lifecycle events by default)."""
        events = self.control.events()[mark:]
        return [e for e in events if not (billing_only and e["type"].startswith("test_helpers."))]

    def types_since(self, mark: int, *, billing_only: bool = True) -> list[str]:
        """Event types after ``mark``."""
        return [e["type"] for e in self.events_since(mark, billing_only=billing_only)]
