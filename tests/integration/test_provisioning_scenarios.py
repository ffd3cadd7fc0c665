"""The provisioner against the panel stand-in over HTTP, the real RabbitMQ and PostgreSQL, every service
as its own process: one server per order whatever fails, classified failures, the dead-letter queue and
its replay with the real ``spawnctl``, the panel's rate limit, and the installation watch.

Every scenario runs twice: with the stand-in as Pterodactyl and as Pelican (module-scoped stack per
flavour, tuned with short timeouts, retry delays and install deadline).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from devstack import Stack

from .conftest import customer_token
from .provisioning_support import (
    PROVISIONER_QUEUE,
    SERVERS_PATH,
    Harness,
    harness_on,
    metric,
    probe_on,
    provisioning_stack_config,
    second_provisioner,
    spawnctl,
)
from .support import BrokerProbe, eventually

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", params=["pterodactyl", "pelican"])
def flavored_stack(request: pytest.FixtureRequest, make_stack: Callable[..., Stack]) -> Iterator[Stack]:
    stack = make_stack(**provisioning_stack_config(request.param))
    yield stack
    stack.stop()  # free the machine for the next flavour; the session removes its databases and queues


@pytest.fixture
async def harness(flavored_stack: Stack) -> AsyncIterator[Harness]:
    async with harness_on(flavored_stack) as h:
        yield h


@pytest.fixture
async def probe(flavored_stack: Stack) -> AsyncIterator[BrokerProbe]:
    async with probe_on(flavored_stack) as p:
        yield p


async def _dead_letters(probe: BrokerProbe, order_id: str) -> list[dict[str, Any]]:
    found = []
    for message in await probe.peek(f"{PROVISIONER_QUEUE}.dlq"):
        if order_id.encode() in message.body:
            found.append(dict(message.headers or {}))
    return found


async def test_happy_path_uses_a_bounded_number_of_panel_calls(harness: Harness) -> None:
    order = await harness.paid_order()
    final = await harness.status(order, "CREATED")
    servers = await harness.api.panel_servers(external_id=order.order_id)
    assert len(servers) == 1
    assert final["server_id"] == servers[0]["identifier"]
    assert servers[0]["memory"] == 2048 and servers[0]["disk"] == 10240  # the starter plan's limits

    by_order = await harness.panel_requests(external_id=order.order_id)
    by_user = await harness.panel_requests(path_prefix="/api/application/users")
    by_user = [r for r in by_user if r["user_external_id"] == order.user_id]
    first, last = by_order[0]["timestamp"], by_order[-1]["timestamp"]
    eggs = [r for r in await harness.panel_requests() if "/eggs" in r["path"] and first <= r["timestamp"] <= last]
    lookups = [r for r in by_order if r["path"].startswith(f"{SERVERS_PATH}/external/")]
    creates = [r for r in by_order if r["method"] == "POST"]
    install_checks = [r for r in by_order if r["path"] == f"{SERVERS_PATH}/{servers[0]['id']}"]
    assert (len(lookups), len(creates)) == (0, 1)  # the first try creates at once: nothing of ours can exist yet
    assert 1 <= len(install_checks) <= 4
    assert len(by_user) <= 2  # look up by external id; create on the customer's first order
    assert len(eggs) <= 1  # cached after the first order
    total = len(by_order) + len(by_user) + len(eggs)
    assert total <= 9, [(r["method"], r["path"]) for r in by_order + by_user + eggs]
    assert all(r["status"] in (200, 201, 404) for r in by_order + by_user + eggs)  # 404: a lookup that missed

    created = await harness.provisioner_events(order, "ServerCreated")
    assert len(created) == 1 and created[0]["payload"]["adopted"] is False
    metrics = await harness.metrics(harness.config.url("provisioner"))
    assert metric(metrics, "provisioner_attempts_total", outcome="created") >= 1
    assert metric(metrics, "provisioner_panel_request_seconds_count", route="/servers", method="POST") >= 1
    for family in ("provisioner_installs_in_progress", "dead_letter_queue_depth"):
        assert family in metrics


async def test_panel_503_three_times_then_success_makes_one_server(harness: Harness) -> None:
    await harness.panel("POST", "/faults", {"status": 503, "times": 3, "method": "POST", "path_prefix": SERVERS_PATH})
    order = await harness.paid_order()
    await harness.status(order, "CREATED")
    assert len(await harness.api.panel_servers(external_id=order.order_id)) == 1
    assert [r["status"] for r in await harness.creates(order.order_id)] == [503, 503, 503, 201]
    assert len(await harness.provisioner_events(order, "ServerCreated")) == 1


async def test_a_create_that_commits_then_hangs_is_adopted_never_created_twice(harness: Harness) -> None:
    await harness.panel("POST", "/nodes/1/wings", {"mode": "commit_then_hang", "times": 1, "hang_seconds": 8})
    order = await harness.paid_order()
    await harness.status(order, "CREATED")
    assert len(await harness.api.panel_servers(external_id=order.order_id)) == 1
    created = await harness.provisioner_events(order, "ServerCreated")
    assert len(created) == 1 and created[0]["payload"]["adopted"] is True
    # The panel logs a request when its response is done, so wait for the hung one (held 8 s) before
    # counting: a second POST (a retry refused as a duplicate) would be logged long before it.
    creates = await eventually(
        lambda: _once_the_hung_create_is_logged(harness, order.order_id, hang_ms=8000),
        timeout=30,
        what="the hung create logged",
    )
    assert len(creates) == 1, creates  # the provisioner timed out, looked again and adopted: no second POST


async def _once_the_hung_create_is_logged(
    harness: Harness, order_id: str, *, hang_ms: float
) -> list[dict[str, Any]] | None:
    creates = await harness.creates(order_id)
    return creates if any(c["duration_ms"] >= hang_ms * 0.9 for c in creates) else None


async def test_order_paid_twice_to_two_provisioner_processes_at_once_makes_one_server(
    harness: Harness, probe: BrokerProbe
) -> None:
    order = await harness.place_order()
    paid = await harness.order_paid_for(order)
    with second_provisioner(harness.config) as other:
        # Hold the first two lookups a second, so both copies are in flight together.
        await harness.panel(
            "POST",
            "/faults",
            {"latency_seconds": 1.0, "times": 2, "method": "GET", "path_prefix": f"{SERVERS_PATH}/external/"},
        )
        body = paid.to_json_bytes()
        headers = {"event_type": "OrderPaid", "event_version": 1}
        await asyncio.gather(
            probe.publish_to_queue(PROVISIONER_QUEUE, body, message_id=str(paid.event_id), headers=headers),
            probe.publish_to_queue(PROVISIONER_QUEUE, body, message_id=str(paid.event_id), headers=headers),
        )
        await harness.status(order, "CREATED")
        handled = [
            metric(await harness.metrics(url), "provisioner_attempts_total")
            for url in (harness.config.url("provisioner"), other)
        ]
    assert len(await harness.api.panel_servers(external_id=order.order_id)) == 1
    assert len(await harness.provisioner_events(order, "ServerCreated")) == 1
    assert handled[1] >= 1, f"the second process handled nothing: {handled}"


async def test_sigkill_between_the_panel_creating_the_server_and_the_commit_leaves_one_server(
    harness: Harness,
) -> None:
    """Killed while the panel holds its answer (server committed, nothing recorded): the redelivered
    OrderPaid adopts the server. Killed again while it installs: the watch resumes after the restart."""
    order = await harness.place_order()
    await harness.panel("POST", "/install", {"outcome": "stuck", "external_id": order.order_id})
    await harness.panel("POST", "/nodes/1/wings", {"mode": "commit_then_hang", "times": 1, "hang_seconds": 30})
    await harness.pay(order)

    async def server() -> dict[str, Any] | None:
        servers = await harness.api.panel_servers(external_id=order.order_id)
        return servers[0] if servers else None

    created_on_panel = await eventually(server, timeout=30, interval=0.02, what="the server committed on the panel")
    harness.stack.kill("provisioner")
    assert await harness.provisioner_events(order, "ServerCreated") == []  # nothing was committed
    harness.stack.restart("provisioner")

    recorded = await eventually(
        lambda: _some(harness.provisioner_events(order, "ServerCreated")), what="ServerCreated after the restart"
    )
    harness.stack.kill("provisioner")  # now while the installation is being watched
    await harness.panel("POST", f"/servers/{created_on_panel['id']}/install", {"outcome": "ok"})
    harness.stack.restart("provisioner")
    await harness.status(order, "CREATED")

    assert len(await harness.api.panel_servers(external_id=order.order_id)) == 1
    # The hung create is logged only when its hang ends; a second create would have been refused at once
    # (422, the external id is taken) and logged then.
    assert [c["status"] for c in await harness.creates(order.order_id)] in ([], [201])
    assert len(recorded) == 1 and recorded[0]["payload"]["adopted"] is True
    assert len(await harness.provisioner_events(order, "ServerCreated")) == 1
    assert len(await harness.provisioner_events(order, "ServerInstalled")) == 1


async def test_an_invalid_egg_variable_is_one_create_call_and_dead_lettered_at_once(
    harness: Harness, probe: BrokerProbe
) -> None:
    # The Vanilla egg, which no other test orders: the provisioner and order-service cache egg rules for a
    # while, and a tightened rule must not leak into other tests' orders.
    order = await harness.place_order(game_id="minecraft-vanilla")  # "latest" was allowed when ordered
    # An administrator tightens the egg before the customer pays.
    await harness.panel("PATCH", "/eggs/2/variables/VANILLA_VERSION", {"rules": "required|integer"})
    try:
        await harness.pay(order)
        failure = await harness.failure(order)
    finally:
        await harness.panel("PATCH", "/eggs/2/variables/VANILLA_VERSION", {"rules": "required|string|max:20"})
    assert failure["reason"] == "invalid_egg_variables"
    assert failure["replayable"] is False
    assert failure["attempts"] == 1
    assert failure["detail"] == {"environment.VANILLA_VERSION": "integer"}
    assert "environment.VANILLA_VERSION" in failure["message"]
    assert len(await harness.creates(order.order_id)) == 1
    dead = await eventually(lambda: _some(_dead_letters(probe, order.order_id)), what="the DLQ copy")
    assert [h["x-spawnpoint-reason"] for h in dead] == ["invalid_egg_variables"]
    assert await harness.provisioner_events(order, "ProvisioningRetryScheduled") == []


async def _some(rows: Any) -> Any:
    found = await rows
    return found or None


async def test_settings_the_egg_refuses_are_refused_before_payment(harness: Harness) -> None:
    """The catalog allows "  abcd" (6 characters); the panel trims it to 4 and its rule is min:5."""
    refused = await harness.api.place_order(
        customer_token(),
        game_id="valheim",
        plan_id="standard",
        settings={"SERVER_PASS": "  abcd"},
    )
    assert refused.status_code == 422, refused.text
    assert refused.json()["detail"][0]["field"] == "settings.SERVER_PASS"
    assert "at least 5" in refused.json()["detail"][0]["message"]


async def test_no_capacity_is_dead_lettered_then_replayed_with_spawnctl_after_adding_room(
    harness: Harness, probe: BrokerProbe
) -> None:
    namespace = harness.config.namespace
    purged = await spawnctl(namespace, "dlq", "purge", "--yes")  # start from an empty dead-letter queue
    assert purged.code == 0, purged.stderr
    await harness.panel("POST", "/nodes/1/capacity", {"memory": 1})
    try:
        order = await harness.paid_order()
        failure = await harness.failure(order)
    finally:
        await harness.panel("POST", "/nodes/1/capacity", {"memory": 4194304})  # capacity added
    assert failure["reason"] == "no_capacity"
    assert failure["replayable"] is True
    dead = await eventually(lambda: _some(_dead_letters(probe, order.order_id)), what="the DLQ copy")
    assert [h["x-spawnpoint-reason"] for h in dead] == ["no_capacity"]
    assert len(await harness.creates(order.order_id)) == 1  # no retry loop for a permanent failure

    listed = await spawnctl(namespace, "dlq", "list")
    assert listed.code == 0 and "no_capacity" in listed.stdout and order.order_id[:30] in listed.stdout
    replayed = await spawnctl(namespace, "dlq", "replay", "--order-id", order.order_id)
    assert replayed.code == 0, replayed.stdout + replayed.stderr
    assert "1 replayed" in replayed.stdout

    await harness.status(order, "CREATED")
    assert await probe.depth(f"{PROVISIONER_QUEUE}.dlq") == 0
    assert len(await harness.api.panel_servers(external_id=order.order_id)) == 1
    replays = await harness.provisioner_events(order, "ProvisioningReplayed")
    assert len(replays) == 1 and replays[0]["payload"]["replay_count"] == 1
    trail = await eventually(lambda: _trail_with(harness, order, "ServerInstalled"), what="the trail")
    assert trail.index("ProvisionFailed") < trail.index("ProvisioningReplayed") < trail.index("ServerInstalled")


async def _trail_with(harness: Harness, order: Any, event_type: str) -> list[str] | None:
    trail = await harness.trail(order)
    return trail if event_type in trail else None


async def test_a_429_with_retry_after_is_honoured(harness: Harness) -> None:
    await harness.panel(
        "POST",
        "/faults",
        {
            "status": 429,
            "times": 1,
            "envelope": True,
            "retry_after": 2,
            "method": "POST",
            "path_prefix": SERVERS_PATH,
        },
    )
    order = await harness.paid_order()
    await harness.status(order, "CREATED")
    calls = await harness.panel_requests(external_id=order.order_id)
    calls += [r for r in await harness.panel_requests() if r["user_external_id"] == order.user_id]
    calls.sort(key=lambda r: r["timestamp"])
    refused = [r for r in calls if r["status"] == 429]
    assert refused, calls  # the order's server create was refused once
    refused_at = datetime.fromisoformat(refused[0]["timestamp"])
    later = [datetime.fromisoformat(r["timestamp"]) for r in calls if r["timestamp"] > refused[0]["timestamp"]]
    assert later and min(later) >= refused_at + timedelta(seconds=2) - timedelta(milliseconds=20), (
        refused_at,
        later,
    )


async def test_a_failed_install_is_reported_as_install_failed(harness: Harness) -> None:
    order = await harness.place_order()
    await harness.panel("POST", "/install", {"outcome": "failed", "external_id": order.order_id})
    await harness.pay(order)
    failure = await harness.failure(order)
    assert failure["reason"] == "install_failed"
    assert failure["server_id"] is not None
    status = (await harness.api.status(order.token, order.order_id)).json()
    assert (status["status"], status["phase"]) == ("FAILED", "failed")


async def test_a_stuck_install_times_out(harness: Harness) -> None:
    order = await harness.place_order()
    await harness.panel("POST", "/install", {"outcome": "stuck", "external_id": order.order_id})
    await harness.pay(order)
    failure = await harness.failure(order, timeout=40)
    assert failure["reason"] == "install_timeout"
    checks = [r for r in await harness.panel_requests(external_id=order.order_id) if r["method"] == "GET"]
    assert len(checks) <= 12  # backoff: a few checks over the 6 s deadline, not a busy loop


async def test_retries_run_out_through_the_broker_then_the_order_fails_and_is_dead_lettered(
    harness: Harness, probe: BrokerProbe
) -> None:
    await harness.panel("POST", "/faults", {"status": 502, "method": "POST", "path_prefix": SERVERS_PATH})
    order = await harness.paid_order()
    failure = await harness.failure(order, timeout=60)
    assert failure["reason"] == "panel_unavailable"
    assert failure["replayable"] is True
    assert failure["attempts"] == 3  # the first delivery and two delayed redeliveries
    scheduled = await harness.provisioner_events(order, "ProvisioningRetryScheduled")
    assert [(e["payload"]["attempt"], e["payload"]["delay_seconds"]) for e in scheduled] == [(1, 1.0), (2, 2.0)]
    dead = await eventually(lambda: _some(_dead_letters(probe, order.order_id)), what="the DLQ copy")
    assert [h["x-spawnpoint-reason"] for h in dead] == ["panel_unavailable"]
    assert await harness.api.panel_servers(external_id=order.order_id) == []
    trail = await harness.trail(order)
    assert trail.count("ProvisioningRetryScheduled") == 2


async def test_a_malformed_message_is_dead_lettered_with_its_reason_and_the_consumer_keeps_working(
    harness: Harness, probe: BrokerProbe
) -> None:
    marker = str(uuid.uuid4())
    await probe.publish_to_queue(PROVISIONER_QUEUE, b'{"order_id": "not even a uuid"}', message_id=marker)

    async def dead_lettered() -> dict[str, Any] | None:
        for message in await probe.peek(f"{PROVISIONER_QUEUE}.dlq"):
            if message.message_id == marker:
                return dict(message.headers or {})
        return None

    headers = await eventually(dead_lettered, what="the malformed message in the DLQ")
    assert headers["x-spawnpoint-reason"] == "malformed_message"
    assert headers["x-spawnpoint-detail"]
    order = await harness.paid_order()
    await harness.status(order, "CREATED")


async def test_no_service_of_this_stack_answered_500(harness: Harness) -> None:
    """Runs last for each flavour (file order). The provisioner killed in the SIGKILL test counts only
    since its restart; the other services count the whole module."""
    assert await harness.api.services_that_answered_500() == {}
