"""What the customer and the card networks do to a rental, end to end: a Dashboard refund, a dispute won
and one lost, a change of plan, cancelling through the API, and the deletion after the retention.

The stack keeps a lapsed server only a few seconds (``RENTAL_RETENTION_DAYS``), so the deletion warning
and the deletion itself run inside the test; everything else is as in ``test_rentals.py``.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from devstack import Stack

from .conftest import customer_token
from .provisioning_support import PaidOrder
from .rentals_support import MONTH, Rentals, rental_stack_config, rentals_on
from .support import eventually

pytestmark = pytest.mark.integration

RETENTION_DAYS = 12 / 86400  # twelve seconds
WARNING_DAYS = 6 / 86400


@pytest.fixture(scope="module")
def policy_stack(make_stack: Callable[..., Stack]) -> Iterator[Stack]:
    config = rental_stack_config(reconcile_seconds=3600)
    config["per_process_env"]["payment-service"].update(
        {"RENTAL_RETENTION_DAYS": f"{RETENTION_DAYS:.10f}", "RENTAL_TERMINATION_WARNING_DAYS": f"{WARNING_DAYS:.10f}"}
    )
    stack = make_stack(**config)
    yield stack
    stack.stop()


@pytest.fixture
async def rentals(policy_stack: Stack) -> AsyncIterator[Rentals]:
    async with rentals_on(policy_stack) as r:
        yield r


async def _charge(rentals: Rentals, order: PaidOrder) -> str:
    """The charge that paid the rental's latest invoice."""
    rental = await rentals.rental(order)
    assert rental is not None and rental["invoice_id"]
    payments = await rentals.stripe("GET", f"/invoice_payments?invoice={rental['invoice_id']}")
    intent = payments["data"][0]["payment"]["payment_intent"]
    charge: str = (await rentals.stripe("GET", f"/payment_intents/{intent}"))["latest_charge"]
    return charge


async def _server(rentals: Rentals, order: PaidOrder) -> dict[str, Any] | None:
    servers = await rentals.api.panel_servers(external_id=order.order_id)
    return servers[0] if servers else None


async def _server_status(rentals: Rentals, order: PaidOrder, wanted: str | None) -> bool | None:
    server = await _server(rentals, order)
    return True if server is not None and server["status"] == wanted else None


async def _gone(rentals: Rentals, order: PaidOrder) -> bool | None:
    return True if await _server(rentals, order) is None else None


async def _causes(rentals: Rentals, order: PaidOrder) -> list[str]:
    return [c["payload"]["cause"] for c in await rentals.payment_events(order, "RentalChanged")]


async def test_a_dashboard_refund_suspends_ends_the_subscription_and_the_server_is_deleted_after_the_warning(
    rentals: Rentals,
) -> None:
    order = await rentals.monthly_rental()
    rental = await rentals.rental(order)
    assert rental is not None
    await rentals.stripe_control("POST", "/dashboard/refund", {"charge": await _charge(rentals, order)})
    await eventually(lambda: _server_status(rentals, order, "suspended"), timeout=60, what="the server suspended")
    subscription = await eventually(
        lambda: _canceled(rentals, rental["subscription_id"]), timeout=30, what="the subscription ended"
    )
    assert subscription["status"] == "canceled"
    await eventually(lambda: _gone(rentals, order), timeout=60, what="the server deleted after the retention")
    causes = await _causes(rentals, order)
    assert causes[:2] == ["activated", "refunded"] and "termination_warning" in causes, causes
    assert causes.count("refunded") == 1
    assert len(await rentals.provisioner_events(order, "ServerTerminated")) == 1
    timeline = await rentals.api.http.get(
        rentals.api.url("status-service", f"/orders/{order.order_id}/timeline"),
        headers={"Authorization": f"Bearer {order.token}"},
    )
    assert timeline.status_code == 200


async def _canceled(rentals: Rentals, subscription_id: str) -> dict[str, Any] | None:
    subscription = await rentals.stripe("GET", f"/subscriptions/{subscription_id}")
    return subscription if subscription["status"] == "canceled" else None


async def test_a_dispute_suspends_and_won_gives_the_server_back_while_one_lost_ends_the_rental(
    rentals: Rentals,
) -> None:
    won = await rentals.monthly_rental()
    opened = await rentals.stripe_control("POST", f"/charges/{await _charge(rentals, won)}/dispute", {})
    await eventually(lambda: _server_status(rentals, won, "suspended"), timeout=60, what="suspended by the dispute")
    await rentals.stripe("POST", f"/disputes/{opened['id']}", {"evidence[uncategorized_text]": "winning_evidence"})
    await eventually(lambda: rentals.rental(won, phase="active"), timeout=60, what="the dispute won")
    await eventually(lambda: _server_status(rentals, won, None), timeout=60, what="the server back")
    assert await _causes(rentals, won) == ["activated", "dispute_opened", "dispute_won"]

    lost = await rentals.monthly_rental()
    opened = await rentals.stripe_control("POST", f"/charges/{await _charge(rentals, lost)}/dispute", {})
    await eventually(lambda: rentals.rental(lost, phase="lapsed"), timeout=60, what="suspended by the dispute")
    await rentals.stripe("POST", f"/disputes/{opened['id']}/close", {})
    await eventually(lambda: rentals.rental(lost, phase="ended"), timeout=60, what="the dispute lost")
    causes = await _causes(rentals, lost)
    assert causes[:3] == ["activated", "dispute_opened", "dispute_lost"], causes


async def test_a_plan_change_is_prorated_and_the_panel_gets_the_new_plans_limits(rentals: Rentals) -> None:
    order = await rentals.monthly_rental()
    response = await rentals.api.http.post(
        rentals.api.url("payment-service", f"/rentals/{order.order_id}/plan"),
        headers={"Authorization": f"Bearer {order.token}"},
        json={"plan_id": "standard"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["plan_id"] == "standard"

    async def resized() -> dict[str, Any] | None:
        server = await _server(rentals, order)
        return server if server is not None and server["memory"] == 4096 else None

    server = await eventually(resized, timeout=60, what="the panel resized to the standard plan")
    assert (server["disk"], server["cpu"], server["feature_limits"]["backups"]) == (20480, 200, 2)
    builds = [w for w in await rentals.server_writes(order) if w.endswith("/build")]
    assert len(builds) == 1

    await rentals.advance(order, MONTH)
    rental = await eventually(lambda: rentals.rental(order, plan_id="standard"), what="the rental on standard")
    lines = await rentals.stripe("GET", f"/invoices/{rental['invoice_id']}/lines")
    prorations = [
        line
        for line in lines["data"]
        if ((line.get("parent") or {}).get("subscription_item_details") or {}).get("proration")
    ]
    assert prorations, "the change of plan is prorated on the next invoice"


async def test_cancelling_through_the_api_is_owner_only_and_can_be_taken_back(rentals: Rentals) -> None:
    order = await rentals.monthly_rental()
    url = rentals.api.url("payment-service", f"/rentals/{order.order_id}/cancellation")
    stranger = {"Authorization": f"Bearer {customer_token(f'user-{uuid.uuid4().hex[:8]}')}"}
    assert (await rentals.api.http.post(url, headers=stranger)).status_code == 404
    owner = {"Authorization": f"Bearer {order.token}"}
    cancelled = await rentals.api.http.post(url, headers=owner)
    assert cancelled.status_code == 200 and cancelled.json()["phase"] == "cancelling", cancelled.text
    assert (await rentals.api.http.post(url, headers=owner)).json()["phase"] == "cancelling"  # again: the same
    undone = await rentals.api.http.delete(url, headers=owner)
    assert undone.status_code == 200 and undone.json()["phase"] == "active", undone.text
    assert (await rentals.api.http.delete(url, headers=owner)).status_code == 409
    causes = await eventually(
        lambda: _with(rentals, order, "cancellation_undone"), what="the cancellation and its undo recorded"
    )
    assert causes == ["activated", "cancellation_scheduled", "cancellation_undone"]


async def _with(rentals: Rentals, order: PaidOrder, cause: str) -> list[str] | None:
    causes = await _causes(rentals, order)
    return causes if cause in causes else None
