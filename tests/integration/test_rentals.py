"""Rentals end to end: a monthly subscription bought through embedded Checkout, then time moved by the
Stripe stand-in's test clock, over the real broker and databases with every service its own process.

Each customer gets a test clock of their own (``STRIPE_TEST_CLOCK_PER_CUSTOMER``), so a test moves only
its own customer's time. Webhooks are paused around every move of the clock and flushed shuffled, with
every event delivered a second time, so each scenario runs with reordered and duplicate deliveries.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest

from devstack import Stack

from .conftest import customer_token
from .provisioning_support import SERVERS_PATH, Harness, PaidOrder, provisioning_stack_config
from .support import Api, eventually

pytestmark = pytest.mark.integration

STRIPE_KEY = "sk_test_spawnpoint_dev"
MONTH = timedelta(days=31, hours=2)
"""Past the period end (a month is at most 31 days) and the charge an hour after it."""


@pytest.fixture(scope="module")
def rental_stack(make_stack: Callable[..., Stack]) -> Iterator[Stack]:
    config = provisioning_stack_config("pterodactyl")
    config["per_process_env"]["payment-service"] = {
        "STRIPE_TEST_CLOCK_PER_CUSTOMER": "true",
        "RENTAL_RECONCILE_SECONDS": "3",
        "RENTAL_DEADLINE_POLL_SECONDS": "0.5",
    }
    stack = make_stack(**config)
    yield stack
    stack.stop()


@pytest.fixture
async def rentals(rental_stack: Stack) -> AsyncIterator[Rentals]:
    async with Api(rental_stack.config) as api:
        r = Rentals(rental_stack, api)
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


async def _paid_through_after(rentals: Rentals, order: PaidOrder, after: datetime) -> datetime | None:
    rental = await rentals.rental(order)
    paid_through = rental["paid_through"] if rental else None
    return paid_through if paid_through is not None and paid_through > after else None


async def test_a_monthly_rental_renews_three_times_with_one_server_and_no_panel_call(rentals: Rentals) -> None:
    order = await rentals.monthly_rental()
    first = await rentals.rental(order)
    assert first is not None and first["kind"] == "subscription"
    paid_through = first["paid_through"]
    writes_before = await rentals.server_writes(order)
    for month in range(3):
        await rentals.advance(order, MONTH)
        if month == 1:  # once, payment-service is killed while the renewal's events arrive
            rentals.stack.kill("payment-service")
            rentals.stack.restart("payment-service")
        before = paid_through
        renewed = await eventually(
            partial(_paid_through_after, rentals, order, before), timeout=60, what=f"renewal {month + 1}"
        )
        assert renewed - paid_through > timedelta(days=27)
        paid_through = renewed

    changes = await rentals.payment_events(order, "RentalChanged")
    causes = [c["payload"]["cause"] for c in changes]
    assert causes == ["activated", "renewed", "renewed", "renewed"], causes
    versions = [c["payload"]["version"] for c in changes]
    assert versions == sorted(versions) and len(set(versions)) == len(versions)
    assert len(await rentals.payment_events(order, "OrderPaid")) == 1
    assert len(await rentals.payment_events(order, "DesiredServerStateChanged")) == 1  # running, once
    assert len(await rentals.api.panel_servers(external_id=order.order_id)) == 1
    assert await rentals.server_writes(order) == writes_before  # a renewal never touches the server
    status = await rentals.customer_status(order)
    assert status["status"] == "CREATED" and status["rental"]["phase"] == "active"
    assert status["rental"]["paid_through"].startswith(paid_through.astimezone(UTC).strftime("%Y-%m-%d"))


async def test_a_failed_renewal_is_past_due_with_the_server_running_and_recovers_on_stripes_retry(
    rentals: Rentals,
) -> None:
    order = await rentals.monthly_rental()
    rental = await rentals.rental(order)
    assert rental is not None
    await rentals.set_card(order, "pm_card_chargeCustomerFail")
    await rentals.advance(order, MONTH)
    past_due = await eventually(lambda: rentals.rental(order, phase="past_due"), timeout=60, what="past due")
    assert past_due["next_payment_attempt"] is not None and past_due["grace_until"] is not None
    status = await rentals.customer_status(order)
    assert status["rental"]["phase"] == "past_due"
    assert "try again" in status["rental"]["message"] and "keeps running" in status["rental"]["message"]

    await rentals.set_card(order, "pm_card_visa")
    await rentals.advance(order, timedelta(days=1, hours=2))  # Stripe's first retry, a day later
    await eventually(lambda: rentals.rental(order, phase="active"), timeout=60, what="recovered")
    causes = [c["payload"]["cause"] for c in await rentals.payment_events(order, "RentalChanged")]
    assert causes == ["activated", "payment_failed", "recovered"], causes
    assert await rentals.server_writes(order) == []  # nothing suspended


async def test_retries_exhausted_suspend_the_server_and_paying_the_open_invoice_unsuspends_it(
    rentals: Rentals,
) -> None:
    await rentals.stripe_control("POST", "/billing/settings", {"subscription_action": "unpaid", "retry_days": [1, 2]})
    order = await rentals.monthly_rental()
    rental = await rentals.rental(order)
    assert rental is not None
    await rentals.set_card(order, "pm_card_chargeCustomerFail")
    await rentals.advance(order, MONTH)
    await rentals.advance(order, timedelta(days=2, hours=2))  # both retries fail: Stripe gives up
    await eventually(lambda: rentals.rental(order, phase="lapsed"), timeout=60, what="lapsed")
    await eventually(lambda: _server_status(rentals, order, "suspended"), timeout=60, what="the server suspended")

    await rentals.set_card(order, "pm_card_visa")
    invoice = (await rentals.rental(order) or {})["invoice_id"]
    await rentals.stripe("POST", f"/invoices/{invoice}/pay", {})
    await eventually(lambda: rentals.rental(order, phase="active"), timeout=60, what="active again")
    await eventually(lambda: _server_status(rentals, order, None), timeout=60, what="the server unsuspended")
    writes = await rentals.server_writes(order)
    assert [w.rsplit("/", 1)[-1] for w in writes] == ["suspend", "unsuspend"], writes
    causes = [c["payload"]["cause"] for c in await rentals.payment_events(order, "RentalChanged")]
    assert causes[0] == "activated" and "lapsed" in causes and causes[-1] == "recovered", causes


async def _server_status(rentals: Rentals, order: PaidOrder, wanted: str | None) -> bool | None:
    (server,) = await rentals.api.panel_servers(external_id=order.order_id)
    return True if server["status"] == wanted else None


async def test_cancel_at_period_end_runs_to_the_end_then_ends_and_undo_keeps_it_running(rentals: Rentals) -> None:
    order = await rentals.monthly_rental()
    rental = await rentals.rental(order)
    assert rental is not None
    portal = await rentals.stripe("POST", "/billing_portal/sessions", {"customer": rental["customer_id"]})
    await rentals.stripe_control(
        "POST", f"/billing_portal/sessions/{portal['id']}/cancel_subscription", {"at_period_end": True}
    )
    await eventually(lambda: rentals.rental(order, phase="cancelling"), timeout=60, what="cancelling")
    await rentals.in_portal(portal["id"], "renew_subscription")
    await eventually(lambda: rentals.rental(order, phase="active"), timeout=60, what="the cancellation undone")
    await rentals.stripe_control(
        "POST", f"/billing_portal/sessions/{portal['id']}/cancel_subscription", {"at_period_end": True}
    )
    await eventually(lambda: rentals.rental(order, phase="cancelling"), timeout=60, what="cancelling again")
    assert await rentals.server_writes(order) == []  # runs until the end
    await rentals.advance(order, MONTH)
    await eventually(lambda: rentals.rental(order, phase="ended"), timeout=60, what="ended at the period end")
    await eventually(lambda: _server_status(rentals, order, "suspended"), timeout=60, what="the server suspended")
    causes = [c["payload"]["cause"] for c in await rentals.payment_events(order, "RentalChanged")]
    assert causes == ["activated", "cancellation_scheduled", "cancellation_undone", "cancellation_scheduled", "ended"]


async def test_a_renewal_whose_webhooks_are_all_lost_is_caught_up_by_the_reconciler(rentals: Rentals) -> None:
    order = await rentals.monthly_rental()
    first = await rentals.rental(order)
    assert first is not None
    for pattern in ("invoice.*", "customer.subscription.*", "invoice_payment.*"):
        await rentals.stripe_control("POST", "/deliveries/drop", {"event_type": pattern, "count": None})
    await rentals.advance(order, MONTH, shuffled=False)
    renewed = await eventually(
        lambda: _paid_through_after(rentals, order, first["paid_through"]), timeout=30, what="the reconciler"
    )
    assert renewed > first["paid_through"]
    (transition,) = [
        t
        for t in await rentals.sql(
            "payment-service", "SELECT * FROM rental_transitions WHERE order_id = $1", uuid.UUID(order.order_id)
        )
        if t["cause"] == "renewed"
    ]
    assert transition["via"] == "reconciler"
