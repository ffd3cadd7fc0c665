"""Drift over the real stack: servers changed behind the shop's back on the panel stand-in (its ``/_fake``
controls) are every one found by the real ``spawnctl drift``, nothing is reported for the orders left
alone, ``--dry-run`` changes nothing, and ``--fix`` lets convergence put the converge kinds right, as
Pterodactyl and as Pelican.

The install watch is slowed down in this stack (its first check 12 s after a server is created) so that a
server deleted while it installs stays ``vanished`` long enough to be seen: the watcher would otherwise
fail the order within a second, which is the point of the watcher, not of this test.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest

from devstack import Stack
from spawnpoint_contracts import (
    DesiredServerState,
    DesiredServerStateChanged,
    DesiredServerStateChangedPayload,
    FeatureLimits,
    Limits,
    RentalCause,
)

from .provisioning_support import Harness, PaidOrder, harness_on, metric, probe_on, provisioning_stack_config
from .support import BrokerProbe, CliResult, eventually, run_cli

pytestmark = pytest.mark.integration

QUEUE = "provisioner.desired-state"
SLOW_WATCH = {
    "INSTALL_POLL_SECONDS": "12",
    "INSTALL_MAX_INTERVAL_SECONDS": "12",
    "INSTALL_DEADLINE_SECONDS": "300",
    "DRIFT_INTERVAL_SECONDS": "10",
}


@pytest.fixture(scope="module", params=["pterodactyl", "pelican"])
def drift_stack(request: pytest.FixtureRequest, make_stack: Callable[..., Stack]) -> Iterator[Stack]:
    config = provisioning_stack_config(request.param)
    config["per_process_env"]["provisioner"].update(SLOW_WATCH)
    stack = make_stack(**config)
    yield stack
    stack.stop()


@pytest.fixture
async def harness(drift_stack: Stack) -> AsyncIterator[Harness]:
    async with harness_on(drift_stack) as h:
        yield h


@pytest.fixture
async def probe(drift_stack: Stack) -> AsyncIterator[BrokerProbe]:
    async with probe_on(drift_stack) as p:
        yield p


async def drift(harness: Harness, *args: str) -> tuple[CliResult, dict[str, Any]]:
    """``spawnctl drift --json ARGS`` against this stack's provisioner: its result and report."""
    env = {"PROVISIONER_URL": harness.config.url("provisioner"), "SPAWNPOINT_NAMESPACE": harness.config.namespace}
    result = await run_cli("spawnctl", "drift", "--json", *args, env=env)
    assert result.code in (0, 1), result.stdout + result.stderr
    return result, json.loads(result.stdout)


def mine(report: dict[str, Any], ids: set[str]) -> set[tuple[str, str]]:
    """The (kind, order id) of the findings about ``ids`` (other tests' orders are not looked at)."""
    return {(f["kind"], f["order_id"]) for f in report["findings"] if f["order_id"] in ids}


async def state_row(harness: Harness, order: PaidOrder) -> dict[str, Any] | None:
    rows = await harness.sql(
        "provisioner",
        "SELECT p.status, p.server_id, s.desired_version, s.applied_version, s.desired_limits "
        "FROM provisionings p JOIN server_states s USING (order_id) WHERE order_id = $1",
        uuid.UUID(order.order_id),
    )
    return dict(rows[0]) if rows else None


async def settled(harness: Harness, order: PaidOrder, version: int = 1) -> dict[str, Any] | None:
    """The order ready with its desired state (at least ``version``) applied, as the real flow leaves it."""
    row = await state_row(harness, order)
    if row and row["status"] == "ready" and row["applied_version"] >= row["desired_version"] >= version:
        return row
    return None


async def ready(harness: Harness) -> PaidOrder:
    order = await harness.paid_order()
    await eventually(lambda: settled(harness, order), timeout=90, what=f"order {order.order_id} ready and applied")
    return order


async def server_of(harness: Harness, order: PaidOrder) -> dict[str, Any]:
    (server,) = await harness.api.panel_servers(external_id=order.order_id)
    return server


async def desire(harness: Harness, probe: BrokerProbe, order: PaidOrder, state: DesiredServerState) -> None:
    """A new desired state for ``order`` (its plan's limits, the next version), converged and applied."""
    row = await state_row(harness, order)
    assert row is not None
    limits = json.loads(row["desired_limits"]) if isinstance(row["desired_limits"], str) else row["desired_limits"]
    version = int(row["desired_version"]) + 1
    event = DesiredServerStateChanged(
        order_id=uuid.UUID(order.order_id),
        correlation_id=f"drift-{order.order_id}",
        producer="payment-service",
        payload=DesiredServerStateChangedPayload(
            version=version,
            state=state,
            reason=RentalCause.LAPSED if state != DesiredServerState.RUNNING else RentalCause.RECOVERED,
            plan_id=str(limits.get("plan_id") or "starter"),
            limits=Limits.model_validate(limits["limits"]),
            feature_limits=FeatureLimits.model_validate(limits["feature_limits"]),
        ),
    )
    await probe.publish_to_queue(QUEUE, event.to_json_bytes(), message_id=str(event.event_id))
    await eventually(lambda: settled(harness, order, version), timeout=60, what=f"{state.value} applied")


async def test_every_injected_drift_is_found_nothing_else_is_and_fix_converges_the_converge_kinds(
    harness: Harness, probe: BrokerProbe
) -> None:
    orders = await asyncio.gather(*(ready(harness) for _ in range(7)))
    _clean, clean_lapsed, by_hand, lapsed, resized, deleted, terminated = orders  # _clean: left alone
    await desire(harness, probe, clean_lapsed, DesiredServerState.SUSPENDED)
    await desire(harness, probe, lapsed, DesiredServerState.SUSPENDED)
    await desire(harness, probe, terminated, DesiredServerState.TERMINATED)
    assert (await server_of(harness, clean_lapsed))["status"] == "suspended"

    _, before = await drift(harness)
    ids = {o.order_id for o in orders}
    assert before["findings"] == [], "a clean system has no drift (this stack holds only this test's orders)"

    # Behind the shop's back:
    plan_memory = (await server_of(harness, resized))["memory"]
    await harness.panel("PATCH", f"/servers/{(await server_of(harness, by_hand))['id']}", {"status": "suspended"})
    await harness.panel("PATCH", f"/servers/{(await server_of(harness, lapsed))['id']}", {"status": None})
    await harness.panel("PATCH", f"/servers/{(await server_of(harness, resized))['id']}", {"memory": plan_memory * 2})
    await harness.panel("DELETE", f"/servers/{(await server_of(harness, deleted))['id']}")
    stranger = str(uuid.uuid4())
    for external_id in (stranger, terminated.order_id, None, f"whmcs-{uuid.uuid4().hex[:6]}"):
        await harness.panel("POST", "/servers", {"external_id": external_id})
    vanished = await harness.place_order()
    await harness.panel("POST", "/install", {"outcome": "stuck", "external_id": vanished.order_id})
    await harness.pay(vanished)
    installing = await eventually(lambda: _installing(harness, vanished), timeout=60, what="the server installing")
    await harness.panel("DELETE", f"/servers/{installing['id']}")

    injected = {
        ("suspended_by_hand", by_hand.order_id),
        ("unsuspended_by_hand", lapsed.order_id),
        ("limits_differ", resized.order_id),
        ("deleted_on_panel", deleted.order_id),
        ("orphan", stranger),
        ("orphan", terminated.order_id),
        ("vanished", vanished.order_id),
    }
    ids |= {stranger, vanished.order_id}
    result, found = await drift(harness)
    assert result.code == 1
    assert mine(found, ids) == injected  # every injected one, and nothing for clean / clean_lapsed
    assert {f["kind"]: f["default_action"] for f in found["findings"] if f["order_id"] in ids} == {
        "suspended_by_hand": "converge",
        "unsuspended_by_hand": "converge",
        "limits_differ": "converge",
        "deleted_on_panel": "report",
        "orphan": "report",
        "vanished": "report",
    }
    metrics = await harness.metrics(harness.config.url("provisioner"))
    assert metric(metrics, "provisioner_drift_servers", kind="orphan") >= 2

    table = await run_cli("spawnctl", "drift", "--dry-run", env={"PROVISIONER_URL": harness.config.url("provisioner")})
    assert table.code == 1 and "would_converge" in table.stdout and "Dry run" in table.stdout, table.stdout
    assert (await server_of(harness, by_hand))["status"] == "suspended"  # nothing changed

    _, fixed = await drift(harness, "--fix")
    done = {(f["kind"], f["order_id"]): f["done"] for f in fixed["findings"] if f["order_id"] in ids}
    done_by_fix = [
        ("suspended_by_hand", by_hand.order_id),
        ("unsuspended_by_hand", lapsed.order_id),
        ("limits_differ", resized.order_id),
    ]
    assert {k for k, v in done.items() if v == "converging"} == set(done_by_fix)
    await eventually(lambda: _status(harness, by_hand, None), what="the hand suspension undone")
    await eventually(lambda: _status(harness, lapsed, "suspended"), what="the hand unsuspension undone")
    await eventually(lambda: _memory(harness, resized, plan_memory), what="the plan's memory back")
    for order in (by_hand, lapsed, resized):
        await eventually(_settled_probe(harness, order), what="the fix recorded as applied")

    _, after = await drift(harness)
    # What is for a person stays reported (vanished only until the install watcher fails the order).
    gone = ("vanished", vanished.order_id)
    assert mine(after, ids) - {gone} == injected - {gone} - set(done_by_fix)
    await eventually(lambda: _job_ran(harness), timeout=40, what="the periodic drift job run")


async def test_an_unreachable_provisioner_is_a_clear_error() -> None:
    result = await run_cli("spawnctl", "drift", env={"PROVISIONER_URL": "http://127.0.0.1:9"})
    assert result.code == 3
    assert "unreachable" in result.stderr and "127.0.0.1:9" in result.stderr


async def _installing(harness: Harness, order: PaidOrder) -> dict[str, Any] | None:
    servers = await harness.api.panel_servers(external_id=order.order_id)
    rows = await harness.sql(
        "provisioner", "SELECT status FROM provisionings WHERE order_id = $1", uuid.UUID(order.order_id)
    )
    if servers and servers[0]["status"] == "installing" and rows and rows[0]["status"] == "installing":
        return servers[0]
    return None


def _settled_probe(harness: Harness, order: PaidOrder) -> Callable[[], Awaitable[dict[str, Any] | None]]:
    return lambda: settled(harness, order)


async def _status(harness: Harness, order: PaidOrder, status: str | None) -> bool:
    return bool((await server_of(harness, order))["status"] == status)


async def _memory(harness: Harness, order: PaidOrder, memory: int) -> bool:
    return bool((await server_of(harness, order))["memory"] == memory)


async def _job_ran(harness: Harness) -> bool:
    metrics = await harness.metrics(harness.config.url("provisioner"))
    return metric(metrics, "provisioner_drift_runs_total", trigger="job", outcome="ok") >= 1
