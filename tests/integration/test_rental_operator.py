"""``spawnctl rental show|reconcile`` against a running stack: an operator sees a renewed rental with both of
its invoices, and a renewal whose every webhook was lost is reported by a dry run (nothing written) and
then applied by the reconciler on demand.

The stack's own reconciler runs hourly here (``RENTAL_RECONCILE_SECONDS=3600``), so it never catches the
lost renewal before the operator does.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from devstack import Stack

from .rentals_support import MONTH, Rentals, paid_through_after, rental_stack_config, rentals_on
from .support import CliResult, eventually, run_cli

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def operator_stack(make_stack: Callable[..., Stack]) -> Iterator[Stack]:
    stack = make_stack(**rental_stack_config(reconcile_seconds=3600))
    yield stack
    stack.stop()


@pytest.fixture
async def rentals(operator_stack: Stack) -> AsyncIterator[Rentals]:
    async with rentals_on(operator_stack) as r:
        yield r


async def _spawnctl(stack: Stack, *args: str) -> CliResult:
    """The installed ``spawnctl rental ...``, pointed at this stack's payment-service by the environment."""
    env = {"PAYMENT_SERVICE_URL": stack.config.url("payment-service"), "COLUMNS": "220"}
    return await run_cli("spawnctl", "rental", *args, env=env, timeout=120)


def _when(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


async def _stripe_invoices(rentals: Rentals, subscription_id: str, paid: int) -> list[dict[str, Any]] | None:
    """The subscription's invoices once Stripe has ``paid`` of them paid (newest first)."""
    listed = await rentals.stripe("GET", f"/invoices?subscription={subscription_id}&limit=100")
    invoices: list[dict[str, Any]] = listed["data"]
    return invoices if sum(i["status"] == "paid" for i in invoices) >= paid else None


async def _transitions(rentals: Rentals, order_id: str) -> list[dict[str, Any]]:
    rows = await rentals.sql(
        "payment-service",
        "SELECT version, cause, via FROM rental_transitions WHERE order_id = $1 ORDER BY version",
        uuid.UUID(order_id),
    )
    return [dict(r) for r in rows]


async def test_an_operator_sees_the_rental_and_reconciles_a_renewal_whose_webhooks_were_lost(rentals: Rentals) -> None:
    stack = rentals.stack
    order = await rentals.monthly_rental()
    first = await rentals.rental(order)
    assert first is not None
    await rentals.advance(order, MONTH)
    renewed = await eventually(
        lambda: paid_through_after(rentals, order, first["paid_through"]), timeout=60, what="the renewal"
    )
    subscription_id = first["subscription_id"]
    invoices = await eventually(lambda: _stripe_invoices(rentals, subscription_id, 2), what="two paid invoices")
    assert len(invoices) == 2

    url = stack.config.url("payment-service")
    shown = await run_cli("spawnctl", "rental", "show", order.order_id, "--url", url, env={"COLUMNS": "220"})
    assert shown.code == 0, shown.stderr
    assert "active (version" in shown.stdout
    assert f"paid through           {_when(renewed)}" in shown.stdout
    for invoice in invoices:
        assert invoice["id"] in shown.stdout
    assert "subscription_create" in shown.stdout and "subscription_cycle" in shown.stdout
    body = json.loads((await _spawnctl(stack, "show", order.order_id, "--json")).stdout)
    assert body["phase"] == "active" and datetime.fromisoformat(body["paid_through"]) == renewed
    assert [i["id"] for i in body["invoices"]] == [i["id"] for i in invoices]
    assert [(h["cause"], h["via"]) for h in body["history"]] == [("activated", "webhook"), ("renewed", "webhook")]

    # Every webhook of the next renewal is lost (as in test_rentals); Stripe renews all the same.
    for pattern in ("invoice.*", "customer.subscription.*", "invoice_payment.*"):
        await rentals.stripe_control("POST", "/deliveries/drop", {"event_type": pattern, "count": None})
    await rentals.advance(order, MONTH, shuffled=False)
    await eventually(lambda: _stripe_invoices(rentals, subscription_id, 3), what="Stripe's third invoice paid")
    before = await rentals.rental(order)
    assert before is not None and before["paid_through"] == renewed  # nothing reached payment-service
    history_before = await _transitions(rentals, order.order_id)

    dry = await _spawnctl(stack, "reconcile", "--dry-run", "--order", order.order_id, "--json")
    assert dry.code == 0, dry.stderr
    report = json.loads(dry.stdout)
    assert report["dry_run"] is True and report["changed"] == 1 and report["failed"] == 0
    (result,) = report["results"]
    assert (result["before"], result["after"], result["causes"]) == ("active", "active", ["renewed"])
    assert datetime.fromisoformat(result["paid_through_after"]) > renewed
    table = await _spawnctl(stack, "reconcile", "--dry-run")  # every subscription rental, as a table
    assert table.code == 0, table.stderr
    assert "nothing written" in table.stdout and order.order_id in table.stdout and "renewed" in table.stdout
    assert await rentals.rental(order) == before  # the dry runs wrote nothing, not even synced_at
    assert await _transitions(rentals, order.order_id) == history_before

    applied = await _spawnctl(stack, "reconcile", "--order", order.order_id, "--json")
    assert applied.code == 0, applied.stderr
    (done,) = json.loads(applied.stdout)["results"]
    assert (done["outcome"], done["causes"]) == ("changed", ["renewed"])
    after = await rentals.rental(order)
    assert after is not None and after["paid_through"] == datetime.fromisoformat(done["paid_through_after"])
    assert after["paid_through"] > renewed and after["version"] > before["version"]
    assert (await _transitions(rentals, order.order_id))[-1]["via"] == "reconciler"
    again = json.loads((await _spawnctl(stack, "reconcile", "--dry-run", "--order", order.order_id, "--json")).stdout)
    assert [(r["outcome"], r["causes"]) for r in again["results"]] == [("unchanged", [])]
