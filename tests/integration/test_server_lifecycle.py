"""A server's life after creation: the provisioner converges the panel to the rental's desired state over
the real broker and databases, with the panel stand-in over HTTP, as Pterodactyl and as Pelican.

The desired states are published to ``provisioner.desired-state`` as payment-service publishes them
(``DesiredServerStateChanged``), for orders whose servers were created by the real flow. Versions start
at 2: payment-service itself asked for ``running`` at version 1 when the order was paid.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
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

from .provisioning_support import (
    SERVERS_PATH,
    Harness,
    PaidOrder,
    harness_on,
    probe_on,
    provisioning_stack_config,
    spawnctl,
)
from .support import BrokerProbe, eventually

pytestmark = pytest.mark.integration

QUEUE = "provisioner.desired-state"
STARTER = Limits(memory=2048, swap=0, disk=10240, io=500, cpu=100)
LARGER = Limits(memory=4096, swap=0, disk=20480, io=500, cpu=200)
FEATURES = FeatureLimits(databases=0, backups=1, allocations=0)


@pytest.fixture(scope="module", params=["pterodactyl", "pelican"])
def flavored_stack(request: pytest.FixtureRequest, make_stack: Callable[..., Stack]) -> Iterator[Stack]:
    config = provisioning_stack_config(request.param)
    # A stuck install must outlive the test's steps on a busy machine (the deadline is tested elsewhere).
    config["per_process_env"]["provisioner"]["INSTALL_DEADLINE_SECONDS"] = "300"
    stack = make_stack(**config)
    yield stack
    stack.stop()


@pytest.fixture
async def harness(flavored_stack: Stack) -> AsyncIterator[Harness]:
    async with harness_on(flavored_stack) as h:
        yield h


@pytest.fixture
async def probe(flavored_stack: Stack) -> AsyncIterator[BrokerProbe]:
    async with probe_on(flavored_stack) as p:
        yield p


def desired(
    order: PaidOrder, state: DesiredServerState, version: int, limits: Limits | None = None
) -> DesiredServerStateChanged:
    return DesiredServerStateChanged(
        order_id=uuid.UUID(order.order_id),
        correlation_id=f"lifecycle-{order.order_id}",
        producer="payment-service",
        payload=DesiredServerStateChangedPayload(
            version=version,
            state=state,
            reason=RentalCause.LAPSED if state == DesiredServerState.SUSPENDED else RentalCause.RECOVERED,
            plan_id="starter",
            limits=limits or STARTER,
            feature_limits=FEATURES,
        ),
    )


async def send(probe: BrokerProbe, event: DesiredServerStateChanged, **headers: Any) -> None:
    await probe.publish_to_queue(QUEUE, event.to_json_bytes(), message_id=str(event.event_id), headers=headers)


async def server_of(harness: Harness, order: PaidOrder) -> dict[str, Any]:
    (server,) = await harness.api.panel_servers(external_id=order.order_id)
    return server


async def ready_server(harness: Harness) -> tuple[PaidOrder, dict[str, Any]]:
    order = await harness.paid_order()
    await harness.status(order, "CREATED")
    return order, await server_of(harness, order)


async def applied(harness: Harness, order: PaidOrder, version: int) -> dict[str, Any] | None:
    rows = await harness.sql(
        "provisioner", "SELECT * FROM server_states WHERE order_id = $1", uuid.UUID(order.order_id)
    )
    return dict(rows[0]) if rows and rows[0]["applied_version"] >= version else None


async def calls(harness: Harness, server_id: int, action: str) -> list[dict[str, Any]]:
    path = f"{SERVERS_PATH}/{server_id}/{action}" if action else f"{SERVERS_PATH}/{server_id}"
    return [r for r in await harness.panel_requests() if r["path"] == path and r["method"] != "GET"]


async def test_lapsed_then_paid_suspends_once_and_unsuspends_once_whatever_the_order_and_duplicates(
    harness: Harness, probe: BrokerProbe
) -> None:
    order, server = await ready_server(harness)
    suspend, unsuspend = desired(order, DesiredServerState.SUSPENDED, 2), desired(order, DesiredServerState.RUNNING, 3)
    await send(probe, suspend)
    await eventually(lambda: applied(harness, order, 2), what="the suspension recorded")
    assert (await server_of(harness, order))["status"] == "suspended"
    for event in (unsuspend, suspend, unsuspend, suspend):  # twice each, the newer first
        await send(probe, event)
    await eventually(lambda: applied(harness, order, 3), what="the unsuspension recorded")
    marker = desired(order, DesiredServerState.RUNNING, 3)
    await send(probe, marker)  # a last duplicate: once it is handled, everything before it was
    await eventually(lambda: _handled_after(harness, order, marker), what="the duplicates handled")

    assert (await server_of(harness, order))["status"] is None
    assert len(await calls(harness, server["id"], "suspend")) == 1
    assert len(await calls(harness, server["id"], "unsuspend")) == 1
    assert len(await harness.provisioner_events(order, "ServerSuspended")) == 1
    assert len(await harness.provisioner_events(order, "ServerUnsuspended")) == 1
    reads = [r for r in await harness.panel_requests() if r["path"] == f"{SERVERS_PATH}/{server['id']}"]
    assert len(reads) <= 8  # a read before and after each action; the stale and duplicate deliveries read nothing


async def _handled_after(harness: Harness, order: PaidOrder, event: DesiredServerStateChanged) -> bool | None:
    rows = await harness.sql(
        "provisioner", "SELECT updated_at FROM server_states WHERE order_id = $1", uuid.UUID(order.order_id)
    )
    return True if rows and rows[0]["updated_at"] >= event.occurred_at else None


async def test_a_suspension_asked_while_installing_happens_after_the_install_and_never_overwrites_it(
    harness: Harness, probe: BrokerProbe
) -> None:
    order = await harness.place_order()
    await harness.panel("POST", "/install", {"outcome": "stuck", "external_id": order.order_id})
    await harness.pay(order)
    server = await eventually(lambda: _installing(harness, order), what="the server installing")
    await send(probe, desired(order, DesiredServerState.SUSPENDED, 2))
    await eventually(lambda: _waiting(harness, order), what="the suspension waiting for the install")
    assert (await server_of(harness, order))["status"] == "installing"
    assert await calls(harness, server["id"], "suspend") == []

    await harness.panel("POST", f"/servers/{server['id']}/install", {"outcome": "ok"})
    await eventually(lambda: applied(harness, order, 2), what="the suspension after the install")
    assert (await server_of(harness, order))["status"] == "suspended"
    assert len(await calls(harness, server["id"], "suspend")) == 1
    assert len(await harness.provisioner_events(order, "ServerSuspended")) == 1


async def _installing(harness: Harness, order: PaidOrder) -> dict[str, Any] | None:
    servers = await harness.api.panel_servers(external_id=order.order_id)
    return servers[0] if servers and servers[0]["status"] == "installing" else None


async def _waiting(harness: Harness, order: PaidOrder) -> bool | None:
    """The suspension is kept, waiting for the server (not recorded yet) or its install to end."""
    rows = await harness.sql(
        "provisioner",
        "SELECT waiting, desired_version FROM server_states WHERE order_id = $1",
        uuid.UUID(order.order_id),
    )
    return True if rows and rows[0]["desired_version"] == 2 and rows[0]["waiting"] in ("server", "install") else None


async def test_sigkill_between_the_panels_204_and_the_commit_records_the_suspension_once(
    harness: Harness, probe: BrokerProbe
) -> None:
    order, server = await ready_server(harness)
    await harness.panel(
        "POST",
        f"/nodes/{server['node']}/wings",
        {"mode": "commit_then_hang", "actions": ["suspend"], "hang_seconds": 30},
    )
    await send(probe, desired(order, DesiredServerState.SUSPENDED, 2))
    await eventually(lambda: _suspended(harness, order), interval=0.02, what="the panel suspending the server")
    harness.stack.kill("provisioner")
    assert await harness.provisioner_events(order, "ServerSuspended") == []
    await harness.reset_panel_faults()
    harness.stack.restart("provisioner")

    await eventually(lambda: applied(harness, order, 2), what="the suspension recorded after the restart")
    assert (await server_of(harness, order))["status"] == "suspended"
    assert len(await harness.provisioner_events(order, "ServerSuspended")) == 1
    assert len(await calls(harness, server["id"], "suspend")) <= 1  # the hung one; none after the restart


async def _suspended(harness: Harness, order: PaidOrder) -> bool | None:
    return True if (await server_of(harness, order))["status"] == "suspended" else None


async def test_a_panel_down_during_a_suspension_is_retried_dead_lettered_and_replayed_once_it_is_back(
    harness: Harness, probe: BrokerProbe
) -> None:
    namespace = harness.config.namespace
    assert (await spawnctl(namespace, "dlq", "purge", "--queue", QUEUE, "--yes")).code == 0
    order, server = await ready_server(harness)
    await harness.panel("POST", f"/nodes/{server['node']}/wings", {"mode": "unreachable", "actions": ["suspend"]})
    await send(probe, desired(order, DesiredServerState.SUSPENDED, 2))
    if harness.config.panel_flavor == "pelican":
        # Pelican keeps the new status when Wings cannot be reached and answers 500: the retry's read-back
        # finds the server suspended, and that is recorded (the panel is the record; Wings syncs later).
        await eventually(lambda: applied(harness, order, 2), what="the suspension Pelican kept")
        assert len(await harness.provisioner_events(order, "ServerSuspended")) == 1
        assert await harness.provisioner_events(order, "ServerActionFailed") == []
        return
    failed = await eventually(
        lambda: _some(harness.provisioner_events(order, "ServerActionFailed")), timeout=60, what="ServerActionFailed"
    )
    assert failed[0]["payload"]["reason"] == "suspend_failed" and failed[0]["payload"]["replayable"] is True
    dead = [m for m in await probe.peek(f"{QUEUE}.dlq") if order.order_id.encode() in m.body]
    assert [dict(m.headers or {})["x-spawnpoint-reason"] for m in dead] == ["suspend_failed"]
    assert len(await calls(harness, server["id"], "suspend")) > 1  # retried before giving up
    assert (await server_of(harness, order))["status"] is None  # Pterodactyl rolled the status back

    await harness.reset_panel_faults()
    listed = await spawnctl(namespace, "dlq", "list", "--queue", QUEUE)
    assert listed.code == 0 and "suspend_failed" in listed.stdout
    replayed = await spawnctl(namespace, "dlq", "replay", "--queue", QUEUE, "--order-id", order.order_id)
    assert replayed.code == 0 and "1 replayed" in replayed.stdout, replayed.stdout + replayed.stderr
    await eventually(lambda: applied(harness, order, 2), what="the suspension after the replay")
    assert (await server_of(harness, order))["status"] == "suspended"
    assert len(await harness.provisioner_events(order, "ServerSuspended")) == 1


async def _some(rows: Any) -> Any:
    found = await rows
    return found or None


async def test_a_plan_change_gives_the_panel_the_new_plans_limits_in_one_complete_build(
    harness: Harness, probe: BrokerProbe
) -> None:
    order, server = await ready_server(harness)
    await send(probe, desired(order, DesiredServerState.RUNNING, 2, limits=LARGER))
    await eventually(lambda: applied(harness, order, 2), what="the resize recorded")
    now = await server_of(harness, order)
    assert (now["memory"], now["disk"], now["cpu"]) == (4096, 20480, 200)
    assert now["feature_limits"]["backups"] == 1
    builds = await calls(harness, server["id"], "build")
    assert [b["status"] for b in builds] == [200]  # never a 422 for a partial body
    (resized,) = await harness.provisioner_events(order, "ServerResized")
    assert resized["payload"]["limits"]["memory"] == 4096


async def test_termination_deletes_once_and_a_server_already_gone_is_success(
    harness: Harness, probe: BrokerProbe
) -> None:
    order, server = await ready_server(harness)
    await harness.panel("POST", f"/servers/{server['id']}/backups", {"locked": True})  # never blocks a delete
    terminate = desired(order, DesiredServerState.TERMINATED, 2)
    await send(probe, terminate)
    await send(probe, terminate)
    await eventually(lambda: applied(harness, order, 2), what="the termination recorded")
    assert await harness.api.panel_servers(external_id=order.order_id) == []
    assert len(await calls(harness, server["id"], "")) == 1  # one DELETE
    (terminated,) = await harness.provisioner_events(order, "ServerTerminated")
    assert terminated["payload"]["already_gone"] is False

    gone, gone_server = await ready_server(harness)
    await harness.panel("DELETE", f"/servers/{gone_server['id']}")  # deleted by hand on the panel
    await send(probe, desired(gone, DesiredServerState.TERMINATED, 2))
    await eventually(lambda: applied(harness, gone, 2), what="the termination of a server already gone")
    (already,) = await harness.provisioner_events(gone, "ServerTerminated")
    assert already["payload"]["already_gone"] is True


async def test_a_deletion_wings_refuses_is_retried_then_dead_lettered_as_terminate_failed_with_the_panels_words(
    harness: Harness, probe: BrokerProbe
) -> None:
    order, server = await ready_server(harness)
    await harness.panel("POST", f"/nodes/{server['node']}/wings", {"mode": "unreachable", "actions": ["delete"]})
    await send(probe, desired(order, DesiredServerState.TERMINATED, 2))
    failed = await eventually(
        lambda: _some(harness.provisioner_events(order, "ServerActionFailed")), timeout=60, what="terminate_failed"
    )
    payload = failed[0]["payload"]
    assert payload["reason"] == "terminate_failed" and payload["action"] == "terminate"
    assert "panel" in payload["message"]
    assert len(await harness.api.panel_servers(external_id=order.order_id)) == 1  # never silently dropped

    # Wings is still down: the operator chooses to delete it anyway.
    replayed = await spawnctl(
        harness.config.namespace, "dlq", "replay", "--queue", QUEUE, "--order-id", order.order_id, "--force-delete"
    )
    assert replayed.code == 0 and "1 replayed" in replayed.stdout, replayed.stdout + replayed.stderr
    await eventually(lambda: applied(harness, order, 2), what="the forced deletion recorded")
    assert await harness.api.panel_servers(external_id=order.order_id) == []
    (terminated,) = await harness.provisioner_events(order, "ServerTerminated")
    assert terminated["payload"]["forced"] is True
