"""The rental end-to-end tests' harness (``test_rentals.py``, ``test_rental_operator.py``): a stack whose
Stripe stand-in gives every customer a test clock of their own, and the ``Rentals`` harness that buys a
monthly rental, moves its customer's clock with webhooks held back and flushed shuffled (each delivered
twice), and reads what payment-service recorded.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

from devstack import Stack

from .conftest import customer_token
from .provisioning_support import SERVERS_PATH, Harness, PaidOrder, provisioning_stack_config
from .support import Api, eventually

STRIPE_KEY = "sk_test_spawnpoint_dev"
MONTH = timedelta(days=31, hours=2)
"""Past the period end (a month is at most 31 days) and the charge an hour after it."""


def rental_stack_config(*, reconcile_seconds: float = 3) -> dict[str, Any]:
    """``make_stack`` overrides for the rental tests: a test clock per customer, a fast deadline job and the
    reconciler every ``reconcile_seconds`` (large to keep it out of a test's way)."""
    config = provisioning_stack_config("pterodactyl")
    config["per_process_env"]["payment-service"] = {
        "STRIPE_TEST_CLOCK_PER_CUSTOMER": "true",
        "RENTAL_RECONCILE_SECONDS": f"{reconcile_seconds:g}",
        "RENTAL_DEADLINE_POLL_SECONDS": "0.5",
    }
    return config


@asynccontextmanager
async def rentals_on(stack: Stack) -> AsyncIterator[Rentals]:
    """A ``Rentals`` harness on ``stack`` with every delivery flowing and Stripe's dunning set to cancel after
    retries on days 1, 3 and 5; deliveries are resumed and undropped afterwards."""
    async with Api(stack.config) as api:
        r = Rentals(stack, api)
        await r.stripe_control("DELETE", "/deliveries/drop")
        await r.stripe_control("POST", "/billing/settings", {"subscription_action": "cancel", "retry_days": [1, 3, 5]})
        try:
            yield r
        finally:
            await r.stripe_control("POST", "/deliveries/resume")
            await r.stripe_control("DELETE", "/deliveries/drop")
            await r.aclose()


class Rentals(Harness):
    """The provisioning harness plus the Stripe stand-in's billing and test clocks."""

    async def stripe(self, method: str, path: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
        response = await self.api.http.request(
            method,
            self.api.url("stripe-fake", f"/v1{path}"),
            data=data,
            headers={"Authorization": f"Bearer {STRIPE_KEY}"},
        )
        assert response.status_code < 400, response.text
        body: dict[str, Any] = response.json()
        return body

    async def stripe_control(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = await self.api.http.request(method, self.api.url("stripe-fake", f"/_fake{path}"), json=body)
        assert response.status_code < 400, response.text
        return response.json() if response.content else None

    async def monthly_rental(self, *, card: str = "pm_card_visa") -> PaidOrder:
        user_id = f"user-{uuid.uuid4().hex[:10]}"
        token = customer_token(user_id)
        placed = await self.api.place_order(token, period="monthly")
        assert placed.status_code == 201, placed.text
        assert placed.json()["billing"]["kind"] == "subscription"
        order = PaidOrder(placed.json()["id"], token, user_id)
        checkout = await self.api.open_checkout(token, order.order_id)
        assert checkout.status_code == 201, checkout.text
        paid = await self.stripe_control(
            "POST", f"/sessions/{checkout.json()['session_id']}/pay", {"outcome": "paid", "payment_method": card}
        )
        assert paid["status"] == "complete"
        await self.status(order, "CREATED")
        await eventually(lambda: self.rental(order, phase="active"), what="the rental active")
        return order

    async def rental(self, order: PaidOrder, **wanted: Any) -> dict[str, Any] | None:
        rows = await self.sql("payment-service", "SELECT * FROM rentals WHERE order_id = $1", uuid.UUID(order.order_id))
        if not rows:
            return None
        row = dict(rows[0])
        return row if all(row.get(k) == v for k, v in wanted.items()) else None

    async def set_card(self, order: PaidOrder, payment_method: str) -> None:
        """The card the customer's next charges use (what they would change in the portal)."""
        rental = await self.rental(order)
        assert rental is not None
        await self.stripe_control(
            "POST", f"/customers/{rental['customer_id']}/payment_method", {"payment_method": payment_method}
        )

    async def in_portal(self, portal_id: str, action: str, **body: Any) -> None:
        await self.stripe_control("POST", f"/billing_portal/sessions/{portal_id}/{action}", body)

    async def customer_clock(self, order: PaidOrder) -> str:
        rental = await self.rental(order)
        assert rental is not None and rental["customer_id"]
        customer = await self.stripe("GET", f"/customers/{rental['customer_id']}")
        clock: str = customer["test_clock"]
        assert clock, "the customer has a test clock of its own"
        return clock

    async def advance(self, order: PaidOrder, by: timedelta, *, shuffled: bool = True) -> None:
        """Move the customer's clock, with webhooks held back, then flushed shuffled and each sent twice."""
        clock_id = await self.customer_clock(order)
        clock = await self.stripe("GET", f"/test_helpers/test_clocks/{clock_id}")
        before = {e["id"] for e in await self.api.stripe_events()}
        if shuffled:
            await self.stripe_control("POST", "/deliveries/pause")
        target = int(clock["frozen_time"] + by.total_seconds())
        await self.stripe("POST", f"/test_helpers/test_clocks/{clock_id}/advance", {"frozen_time": str(target)})
        await eventually(lambda: self._ready(clock_id), timeout=30, what="the test clock ready")
        if shuffled:
            await self.stripe_control("POST", "/deliveries/flush?order=shuffle&seed=7")
            for event in await self.api.stripe_events():
                if event["id"] not in before:
                    await self.api.stripe_redeliver(event["id"])  # a duplicate of every new event
            await self.stripe_control("POST", "/deliveries/resume")

    async def _ready(self, clock_id: str) -> bool | None:
        clock = await self.stripe("GET", f"/test_helpers/test_clocks/{clock_id}")
        return True if clock["status"] == "ready" else None

    async def payment_events(self, order: PaidOrder, event_type: str) -> list[dict[str, Any]]:
        import json

        rows = await self.sql(
            "payment-service",
            "SELECT body FROM outbox WHERE message_type = $1 AND order_id = $2 ORDER BY created_at",
            event_type,
            uuid.UUID(order.order_id),
        )
        return [json.loads(bytes(r["body"])) for r in rows]

    async def server_writes(self, order: PaidOrder) -> list[str]:
        """Panel calls that change the order's server (anything but reads) after it was created."""
        (server,) = await self.api.panel_servers(external_id=order.order_id)
        prefix = f"{SERVERS_PATH}/{server['id']}"
        return [
            f"{r['method']} {r['path']}"
            for r in await self.panel_requests()
            if r["path"].startswith(prefix) and r["method"] != "GET"
        ]

    async def customer_status(self, order: PaidOrder) -> dict[str, Any]:
        response = await self.api.status(order.token, order.order_id)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


async def paid_through_after(rentals: Rentals, order: PaidOrder, after: datetime) -> datetime | None:
    rental = await rentals.rental(order)
    paid_through = rental["paid_through"] if rental else None
    return paid_through if paid_through is not None and paid_through > after else None
