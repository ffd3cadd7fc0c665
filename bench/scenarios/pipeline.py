"""pipeline: N orders from ``POST /orders`` through payment, webhook, provisioning and installation until
every one is CREATED (the panel stand-in installs at once and has no rate limit).

Three runs on one system: all N orders as fast as the driver can place them (sustained orders per second);
then the fixed, moderate rate the issue names (20 orders/s), whose latency is only free of queueing if the
system sustains more than that; then half the sustained rate just measured, which is below capacity by
construction, so its latency is the pipeline's own per-order cost whatever this machine manages.
For every order the stage timestamps come from the services' own records afterwards
(nothing extra is timed inside the services):

- webhook received        payment-service ``stripe_events.received_at``
- OrderPaid published     payment-service ``outbox.published_at``
- panel create request    the panel stand-in's request log (``POST /api/application/servers``)
- ServerCreated published provisioner ``outbox.published_at``
- CREATED visible         status-service ``order_status_changes.changed_at`` of the first ``ready`` version

References measured in the same run: the broker's confirmed publish -> consume -> ack rate and PostgreSQL's
single-row commit rate, with how many deliveries and commits one order needs (counted from the run), so
the report says how close the pipeline is to what the machine allows.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from devstack import SERVICES, STAND_INS, Stack
from setup_infra import pg_server_url
from spawnpoint_kit.settings import CommonSettings

from ..client import System, bounded, seconds_between
from ..references import broker_round_trip, postgres_commits
from ..stats import Figure, ScenarioResult, latency_ms
from ..system import running_system

TARGET_SUSTAINED = 200.0
TARGET_ADDED_P99_MS = 250.0
TARGET_RSS_MB = 150.0
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


@dataclass
class Run:
    order_ids: list[str]
    started: float
    all_placed: float
    all_created: float
    cpu: dict[str, float]


async def _one_order(system: System, i: int, tag: str) -> str:
    user = f"{tag}-{i}"
    order_id = await system.place_order(user)
    session_id = await system.open_checkout(user, order_id)
    await system.pay(session_id)
    return order_id


async def _wait_created(system: System, order_ids: list[str], timeout: float) -> None:
    ids = [uuid.UUID(o) for o in order_ids]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = await system.query(
            "status-service", "SELECT count(*) FROM order_status WHERE phase = 'ready' AND order_id = ANY($1)", ids
        )
        if rows[0][0] == len(ids):
            return
        await asyncio.sleep(0.05)
    raise TimeoutError(f"only {rows[0][0]} of {len(ids)} orders reached CREATED within {timeout:.0f}s")


def _cpu(stack: Stack) -> dict[str, float]:
    return {name: cpu_seconds(proc.pid) for name, proc in stack.procs.items()}


async def _drive(stack: Stack, orders: int, *, tag: str, rate: float | None, concurrency: int) -> Run:
    system = System(stack)
    try:
        cpu_before = _cpu(stack)
        started = time.monotonic()
        if rate is None:
            order_ids = await bounded(range(orders), lambda i: _one_order(system, i, tag), concurrency=concurrency)
        else:
            tasks = []
            for i in range(orders):
                delay = started + i / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(_one_order(system, i, tag)))
            order_ids = list(await asyncio.gather(*tasks))
        placed = time.monotonic()
        await _wait_created(system, order_ids, timeout=max(120.0, orders * 0.5))
        created = time.monotonic()
        cpu_after = _cpu(stack)
        return Run(order_ids, started, placed, created, {k: cpu_after[k] - cpu_before[k] for k in cpu_after})
    finally:
        await system.close()


async def _stages(stack: Stack, order_ids: list[str]) -> dict[str, list[float]]:
    system = System(stack)
    try:
        ids = [uuid.UUID(o) for o in order_ids]
        webhook = await _by_order(
            system,
            "payment-service",
            "SELECT order_id, min(received_at) FROM stripe_events "
            "WHERE type = 'checkout.session.completed' AND order_id = ANY($1) GROUP BY order_id",
            ids,
        )
        paid = await _by_order(
            system,
            "payment-service",
            "SELECT order_id, published_at FROM outbox WHERE message_type = 'OrderPaid' AND order_id = ANY($1)",
            ids,
        )
        server_created = await _by_order(
            system,
            "provisioner",
            "SELECT order_id, published_at FROM outbox WHERE message_type = 'ServerCreated' AND order_id = ANY($1)",
            ids,
        )
        visible = await _by_order(
            system,
            "status-service",
            "SELECT order_id, min(changed_at) FROM order_status_changes "
            "WHERE phase = 'ready' AND order_id = ANY($1) GROUP BY order_id",
            ids,
        )
        log = await system.panel.json("GET", "/_fake/requests?method=POST&path_prefix=/api/application/servers")
        create_request: dict[uuid.UUID, datetime] = {}
        for entry in log["requests"]:
            if entry.get("external_id"):
                at = datetime.fromisoformat(entry["timestamp"])
                create_request.setdefault(uuid.UUID(entry["external_id"]), at)
    finally:
        await system.close()
    out: dict[str, list[float]] = {
        k: []
        for k in (
            "webhook_to_order_paid",
            "order_paid_to_panel_create",
            "create_to_server_created",
            "server_created_to_created_visible",
            "webhook_to_created_visible",
        )
    }
    for oid in ids:
        pairs = {
            "webhook_to_order_paid": (webhook.get(oid), paid.get(oid)),
            "order_paid_to_panel_create": (paid.get(oid), create_request.get(oid)),
            "create_to_server_created": (create_request.get(oid), server_created.get(oid)),
            "server_created_to_created_visible": (server_created.get(oid), visible.get(oid)),
            "webhook_to_created_visible": (webhook.get(oid), visible.get(oid)),
        }
        for stage, (a, b) in pairs.items():
            value = seconds_between(a, b)
            if value is not None:
                out[stage].append(max(0.0, value))
    return out


async def _by_order(system: System, service: str, sql: str, ids: list[uuid.UUID]) -> dict[uuid.UUID, datetime]:
    """One timestamp per order from a service's own records (``sql`` selects order id, time)."""
    return {row[0]: row[1] for row in await system.query(service, sql, ids)}


async def _counts(stack: Stack) -> dict[str, int]:
    """Commits and deliveries so far, summed over the four services (to divide by the orders)."""
    system = System(stack)
    commits = 0
    try:
        for service in SERVICES:
            name = stack.config.database_url(service).rsplit("/", 1)[1]
            rows = await system.query(service, "SELECT xact_commit FROM pg_stat_database WHERE datname = $1", name)
            commits += int(rows[0][0])
        deliveries = 0
        for service in SERVICES:
            metrics = await system.by_service[service].request("GET", "/metrics")
            deliveries += _sum_metric(metrics.body.decode(), "messages_consumed_total")
        return {"commits": commits, "deliveries": deliveries}
    finally:
        await system.close()


def _sum_metric(text: str, name: str) -> int:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
    return int(total)


def _stage_latencies(stages: dict[str, list[float]]) -> dict[str, Any]:
    return {stage: latency_ms(values) for stage, values in stages.items()}


def run(
    *, orders: int = 2000, rate: float = 20.0, rated_orders: int = 400, concurrency: int = 64, light_orders: int = 100
) -> ScenarioResult:
    result = ScenarioResult(
        "pipeline",
        {
            "orders": orders,
            "fixed_rate": rate,
            "rated_orders": rated_orders,
            "light_orders": light_orders,
            "driver_concurrency": concurrency,
        },
    )
    with running_system() as stack:
        asyncio.run(_make_room(stack, orders + rated_orders + light_orders + 100))
        counts_before = asyncio.run(_counts(stack))
        burst = asyncio.run(_drive(stack, orders, tag="burst", rate=None, concurrency=concurrency))
        counts_after = asyncio.run(_counts(stack))
        burst_stages = asyncio.run(_stages(stack, burst.order_ids))
        steady = asyncio.run(_drive(stack, rated_orders, tag="steady", rate=rate, concurrency=concurrency))
        steady_stages = asyncio.run(_stages(stack, steady.order_ids))
        light_rate = round(max(0.5, 0.5 * orders / (burst.all_created - burst.started)), 1)
        light = asyncio.run(_drive(stack, light_orders, tag="light", rate=light_rate, concurrency=concurrency))
        light_stages = asyncio.run(_stages(stack, light.order_ids))
        rss = {name: round(peak_rss_mb(proc.pid), 1) for name, proc in stack.procs.items()}
    broker_rate = asyncio.run(broker_round_trip(CommonSettings().broker_url.get_secret_value()))
    pg_rate = asyncio.run(postgres_commits(f"{pg_server_url()}/sp_bench_ref_{uuid.uuid4().hex[:6]}"))

    sustained = orders / (burst.all_created - burst.started)
    commits_per_order = (counts_after["commits"] - counts_before["commits"]) / orders
    deliveries_per_order = (counts_after["deliveries"] - counts_before["deliveries"]) / orders
    machine_limit = min(broker_rate / max(deliveries_per_order, 1), pg_rate / max(commits_per_order, 1))
    added = steady_stages["webhook_to_created_visible"]
    added_lat = latency_ms(added)
    light_lat = latency_ms(light_stages["webhook_to_created_visible"])

    result.details = {
        "burst": {
            "orders": orders,
            "seconds_to_all_created": round(burst.all_created - burst.started, 2),
            "seconds_to_all_placed": round(burst.all_placed - burst.started, 2),
            "cpu_seconds": {k: round(v, 2) for k, v in burst.cpu.items()},
            "cpu_ms_per_order": {k: round(v * 1000 / orders, 2) for k, v in burst.cpu.items()},
            "stages": _stage_latencies(burst_stages),
        },
        "fixed_rate": {
            "orders": rated_orders,
            "rate": rate,
            "achieved_rate": round(rated_orders / (steady.all_placed - steady.started), 2),
            "stages": _stage_latencies(steady_stages),
        },
        "half_sustained_rate": {
            "orders": light_orders,
            "rate": light_rate,
            "achieved_rate": round(light_orders / (light.all_placed - light.started), 2),
            "stages": _stage_latencies(light_stages),
        },
        "per_order": {"commits": round(commits_per_order, 1), "deliveries": round(deliveries_per_order, 1)},
        "references": {
            "broker_round_trips_per_s": round(broker_rate, 1),
            "postgres_commits_per_s": round(pg_rate, 1),
            "machine_limit_orders_per_s": round(machine_limit, 1),
        },
        "peak_rss_mb": rss,
    }
    result.add(
        Figure(
            "sustained throughput",
            sustained,
            "orders/s",
            machine_limit,
            "broker+PostgreSQL limit for one order's hops and commits",
            f">= {TARGET_SUSTAINED:.0f}/s",
            sustained >= TARGET_SUSTAINED,
        )
    )
    result.add(
        Figure(
            "added latency p99 at 20/s",
            added_lat["p99_ms"],
            "ms",
            None,
            None,
            f"<= {TARGET_ADDED_P99_MS:.0f} ms",
            added_lat["p99_ms"] <= TARGET_ADDED_P99_MS,
        )
    )
    result.add(Figure("added latency p50 at 20/s", added_lat["p50_ms"], "ms"))
    result.add(Figure(f"added latency p99 at {light_rate:g}/s (half sustained)", light_lat["p99_ms"], "ms"))
    result.add(Figure(f"added latency p50 at {light_rate:g}/s (half sustained)", light_lat["p50_ms"], "ms"))
    result.add(Figure("broker round trips", broker_rate, "msg/s", None, None))
    result.add(Figure("PostgreSQL commits", pg_rate, "commits/s", None, None))
    return result


async def _make_room(stack: Stack, servers: int) -> None:
    system = System(stack)
    try:
        await system.make_room_on_panel(servers)
    finally:
        await system.close()


def run_memory(*, orders: int = 2000) -> ScenarioResult:
    """memory: peak resident memory of each service during the pipeline scenario (run for it)."""
    return memory_of(run(orders=orders, rated_orders=100))


def memory_of(pipeline: ScenarioResult) -> ScenarioResult:
    """memory: peak resident memory (VmHWM) of each process during a pipeline run."""
    rss: dict[str, float] = pipeline.details["peak_rss_mb"]
    result = ScenarioResult("memory", {"orders": pipeline.parameters["orders"], "during": "pipeline"})
    result.details = {"peak_rss_mb": rss}
    for name in (*SERVICES, *STAND_INS):
        if name in rss:
            target = f"<= {TARGET_RSS_MB:.0f} MB" if name in SERVICES else None
            met = rss[name] <= TARGET_RSS_MB if name in SERVICES else None
            result.add(Figure(f"peak RSS {name}", rss[name], "MB", None, None, target, met))
    return result
