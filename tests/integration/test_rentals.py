"""Rentals end to end: a monthly subscription bought through embedded Checkout, then time moved by the
Stripe stand-in's test clock, over the real broker and databases with every service its own process.

Each customer gets a test clock of their own (``STRIPE_TEST_CLOCK_PER_CUSTOMER``), so a test moves only
its own customer's time. Webhooks are paused around every move of the clock and flushed shuffled, with
every event delivered a second time, so each scenario runs with reordered and duplicate deliveries. The
harness is ``rentals_support.Rentals``.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, timedelta
from functools import partial

import pytest

from devstack import Stack

from .provisioning_support import PaidOrder
from .rentals_support import MONTH, Rentals, rental_stack_config, rentals_on
from .rentals_support import paid_through_after as _paid_through_after
from .support import eventually

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def rental_stack(make_stack: Callable[..., Stack]) -> Iterator[Stack]:
    stack = make_stack(**rental_stack_config())
    yield stack
    stack.stop()


@pytest.fixture
async def rentals(rental_stack: Stack) -> AsyncIterator[Rentals]:
    async with rentals_on(rental_stack) as r:
        yield r


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
