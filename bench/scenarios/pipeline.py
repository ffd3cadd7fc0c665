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
the report says how close the pipeline is to what the machine allows; and the seed-style reference
(``scenarios/seed_style.py``): the synchronous design doing the order's work inside the webhook, under the
same burst, so the report says whether the split pays for itself.

A fourth run repeats the half-sustained rate with the panel stand-in slowed (a proxy delay on creates),
and the webhook latency Stripe sees (the Stripe stand-in's own delivery timings) is compared with the
light run's: it must not follow the panel, where the seed-style reference's does.

CPU per order is every service's and stand-in's CPU time (``/proc``) over the burst divided by its orders.
Commits are PostgreSQL's ``xact_commit`` of the four databases (read-only transactions count too: each is
a round trip), read once the counters settled, minus the bench's own status queries. Deliveries are the
services' ``messages_consumed_total``. All three include what the idle services do anyway while the burst
lasts (periodic jobs: measured for a few seconds before it, in the details with the figures net of it),
as that is what an order costs the machine at the measured rate; at a low rate it is most of the figure.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from devstack import SERVICES, STAND_INS, Stack
from setup_infra import pg_server_url
from spawnpoint_kit.settings import CommonSettings

from ..client import System, bounded, seconds_between
from ..counters import commits as count_commits
from ..counters import cpu_seconds, database_name, peak_rss_mb, settled_commits
from ..references import broker_round_trip, postgres_commits
from ..stats import Figure, ScenarioResult, latency_ms, percentile
from ..system import INSTALL_POLL_SECONDS, PANEL_INSTALL_SECONDS, running_system
from . import seed_style

TARGET_SUSTAINED = 40.0
TARGET_LIMIT_RATIO = 0.3
TARGET_SEED_RATIO = 1.0
TARGET_CPU_MS = 30.0
TARGET_COMMITS = 10.0
TARGET_DELIVERIES = 8.0
TARGET_ADDED_P99_MS = 250.0
TARGET_PANEL_SHARE = 0.1
"""Spawnpoint's webhook p99 may grow by at most this share of the delay added to the panel."""
TARGET_RSS_MB = 150.0
BACKGROUND_SECONDS = 5.0
"""How long the idle system's background commits are counted before the burst."""


@dataclass
class Run:
    order_ids: list[str]
    started: float
    all_placed: float
    all_created: float
    cpu: dict[str, float]
    polls: int = 0
    """Queries the bench made to status-service's database while waiting (subtracted from its commits)."""


async def _one_order(system: System, i: int, tag: str) -> str:
    user = f"{tag}-{i}"
    order_id = await system.place_order(user)
    session_id = await system.open_checkout(user, order_id)
    await system.pay(session_id)
    return order_id


async def _wait_created(system: System, order_ids: list[str], timeout: float) -> int:
    """Wait until every order is CREATED; returns how many queries that took."""
    ids = [uuid.UUID(o) for o in order_ids]
    deadline = time.monotonic() + timeout
    polls = 0
    while time.monotonic() < deadline:
        rows = await system.query(
            "status-service", "SELECT count(*) FROM order_status WHERE phase = 'ready' AND order_id = ANY($1)", ids
        )
        polls += 1
        if rows[0][0] == len(ids):
            return polls
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
        polls = await _wait_created(system, order_ids, timeout=max(120.0, orders * 0.5))
        created = time.monotonic()
        cpu_after = _cpu(stack)
        cpu = {k: cpu_after[k] - cpu_before[k] for k in cpu_after}
        return Run(order_ids, started, placed, created, cpu, polls)
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


async def _deliveries(stack: Stack) -> int:
    """Messages consumed so far, summed over the four services (to divide by the orders)."""
    system = System(stack)
    try:
        deliveries = 0
        for service in SERVICES:
            metrics = await system.by_service[service].request("GET", "/metrics")
            deliveries += _sum_metric(metrics.body.decode(), "messages_consumed_total")
        return deliveries
    finally:
        await system.close()


def _databases(stack: Stack) -> list[str]:
    return [database_name(stack.config.database_url(service)) for service in SERVICES]


def _sum_metric(text: str, name: str) -> int:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
    return int(total)


def _stage_latencies(stages: dict[str, list[float]]) -> dict[str, Any]:
    return {stage: latency_ms(values) for stage, values in stages.items()}


@dataclass
class Webhooks:
    """Stripe's side of the webhook: every delivery attempt of the orders' ``checkout.session.completed``,
    timed by the Stripe stand-in from sending the request to the end of the answer."""

    seconds: list[float]
    statuses: dict[str, int]

    def summary(self) -> dict[str, Any]:
        return {**latency_ms(self.seconds), "statuses": self.statuses}


async def _webhooks(stack: Stack, order_ids: list[str]) -> Webhooks:
    system = System(stack)
    try:
        rows = await system.query(
            "payment-service",
            "SELECT id FROM stripe_events WHERE type = 'checkout.session.completed' AND order_id = ANY($1)",
            [uuid.UUID(o) for o in order_ids],
        )
        wanted = {str(row[0]) for row in rows}
        attempts = await system.stripe.json("GET", "/_fake/deliveries?event_type=checkout.session.completed")
    finally:
        await system.close()
    out = Webhooks([], {})
    for attempt in attempts["data"]:
        if attempt["event_id"] in wanted:
            out.seconds.append(float(attempt["duration_ms"]) / 1000)
            status = str(attempt.get("status_code") or attempt.get("error") or "none")
            out.statuses[status] = out.statuses.get(status, 0) + 1
    return out


async def _event_template(stack: Stack, order_id: str) -> dict[str, Any] | None:
    """One order's real ``checkout.session.completed``, as the seed-style reference's model event (None:
    the reference makes one on a Stripe stand-in of its own)."""
    system = System(stack)
    try:
        found = await system.stripe.json("GET", f"/_fake/events?type=checkout.session.completed&order_id={order_id}")
        return dict(found["data"][0]) if found["data"] else None
    finally:
        await system.close()


async def _slow_panel(stack: Stack, seconds: float) -> None:
    """Delay every server create on the stack's panel stand-in by ``seconds`` (0: clear the delay)."""
    system = System(stack)
    try:
        await system.panel.json("DELETE", "/_fake/faults")
        if seconds > 0:
            await system.panel.json(
                "POST",
                "/_fake/faults",
                body={"latency_seconds": seconds, "method": "POST", "path_prefix": "/api/application/servers"},
            )
    finally:
        await system.close()


@dataclass
class BurstCost:
    """What the burst cost beyond its own CPU: commits (counted, and the bench's own queries among them),
    deliveries, and the idle system's background (commits and CPU per second, measured just before) that
    the figures include as an order would (it is the machine's cost at that rate) and the details show
    apart, because at a low rate it is most of the per-order figures."""

    orders: int
    seconds: float
    commits_counted: int
    """From the burst's start to the counters' settling, ``counted_seconds`` later."""
    counted_seconds: float
    bench_queries: int
    deliveries: int
    idle_commits_per_s: float
    idle_cpu_per_s: dict[str, float]

    @property
    def commits_per_order(self) -> float:
        """Commits during the burst: the count, minus the bench's queries and the idle background of the
        wait for the counters to settle after it."""
        after = self.idle_commits_per_s * (self.counted_seconds - self.seconds)
        return (self.commits_counted - self.bench_queries - after) / self.orders

    @property
    def deliveries_per_order(self) -> float:
        return self.deliveries / self.orders

    def summary(self, cpu: dict[str, float]) -> dict[str, Any]:
        idle_cpu = sum(self.idle_cpu_per_s.values()) * self.seconds
        return {
            "burst_seconds": round(self.seconds, 1),
            "commits_counted": self.commits_counted,
            "commits_counted_over_seconds": round(self.counted_seconds, 1),
            "bench_queries_subtracted": self.bench_queries,
            "commits_per_order": round(self.commits_per_order, 2),
            "idle_commits_per_s": round(self.idle_commits_per_s, 1),
            "commits_per_order_net_of_idle": round(
                self.commits_per_order - self.idle_commits_per_s * self.seconds / self.orders, 2
            ),
            "idle_cpu_ms_per_s": {k: round(v * 1000, 1) for k, v in self.idle_cpu_per_s.items()},
            "cpu_ms_per_order_net_of_idle": round((sum(cpu.values()) - idle_cpu) * 1000 / self.orders, 2),
        }


def _burst_with_costs(stack: Stack, orders: int, concurrency: int) -> tuple[Run, BurstCost]:
    """The burst, with the commits and deliveries it cost and the idle background (module docstring)."""
    databases = _databases(stack)
    idle_commits = asyncio.run(settled_commits(databases))  # the start-up's counters flushed first
    idle_from, idle_cpu = time.monotonic(), _cpu(stack)
    time.sleep(BACKGROUND_SECONDS)
    before, commits_before, cpu_before = time.monotonic(), asyncio.run(count_commits(databases)), _cpu(stack)
    idle_seconds = before - idle_from
    deliveries_before = asyncio.run(_deliveries(stack))
    burst = asyncio.run(_drive(stack, orders, tag="burst", rate=None, concurrency=concurrency))
    deliveries = asyncio.run(_deliveries(stack)) - deliveries_before
    commits_after = asyncio.run(settled_commits(databases))
    cost = BurstCost(
        orders=orders,
        seconds=burst.all_created - burst.started,
        commits_counted=commits_after - commits_before,
        counted_seconds=time.monotonic() - before,
        bench_queries=burst.polls,
        deliveries=deliveries,
        idle_commits_per_s=(commits_before - idle_commits) / idle_seconds,
        idle_cpu_per_s={k: (cpu_before[k] - idle_cpu[k]) / idle_seconds for k in cpu_before},
    )
    return burst, cost


def run(
    *,
    orders: int = 2000,
    rate: float = 20.0,
    rated_orders: int = 400,
    concurrency: int = 64,
    light_orders: int = 100,
    seed_orders: int | None = None,
    panel_latency: float = seed_style.DEFAULT_PANEL_LATENCY,
) -> ScenarioResult:
    seed_count = orders if seed_orders is None else seed_orders
    result = ScenarioResult(
        "pipeline",
        {
            "orders": orders,
            "fixed_rate": rate,
            "rated_orders": rated_orders,
            "light_orders": light_orders,
            "driver_concurrency": concurrency,
            "seed_orders": seed_count,
            "panel_latency_seconds": panel_latency,
            "install_poll_seconds": INSTALL_POLL_SECONDS,
            "panel_install_seconds": PANEL_INSTALL_SECONDS,
        },
    )
    with running_system() as stack:
        asyncio.run(_make_room(stack, orders + rated_orders + 2 * light_orders + 100))
        burst, cost = _burst_with_costs(stack, orders, concurrency)
        burst_stages = asyncio.run(_stages(stack, burst.order_ids))
        burst_webhooks = asyncio.run(_webhooks(stack, burst.order_ids))
        template = asyncio.run(_event_template(stack, burst.order_ids[0]))
        steady = asyncio.run(_drive(stack, rated_orders, tag="steady", rate=rate, concurrency=concurrency))
        steady_stages = asyncio.run(_stages(stack, steady.order_ids))
        light_rate = round(max(0.5, 0.5 * orders / (burst.all_created - burst.started)), 1)
        light = asyncio.run(_drive(stack, light_orders, tag="light", rate=light_rate, concurrency=concurrency))
        light_stages = asyncio.run(_stages(stack, light.order_ids))
        light_webhooks = asyncio.run(_webhooks(stack, light.order_ids))
        asyncio.run(_slow_panel(stack, panel_latency))
        slowed = asyncio.run(_drive(stack, light_orders, tag="slowed", rate=light_rate, concurrency=concurrency))
        asyncio.run(_slow_panel(stack, 0))
        slowed_webhooks = asyncio.run(_webhooks(stack, slowed.order_ids))
        rss = {name: round(peak_rss_mb(proc.pid), 1) for name, proc in stack.procs.items()}
    seed = seed_style.measure(
        orders=seed_count,
        concurrency=concurrency,
        panel_latency=panel_latency,
        paced_rate=light_rate,
        paced_orders=light_orders,
        template=template,
    )
    broker_rate = asyncio.run(broker_round_trip(CommonSettings().broker_url.get_secret_value()))
    pg_rate = asyncio.run(postgres_commits(f"{pg_server_url()}/sp_bench_ref_{uuid.uuid4().hex[:6]}"))

    sustained = orders / (burst.all_created - burst.started)
    commits_per_order, deliveries_per_order = cost.commits_per_order, cost.deliveries_per_order
    machine_limit = min(broker_rate / max(deliveries_per_order, 1), pg_rate / max(commits_per_order, 1))
    cpu_ms = sum(burst.cpu.values()) * 1000 / orders
    # The bench's panel installs at once and the provisioner asks every INSTALL_POLL_SECONDS: both are
    # configured waits, not the pipeline's cost, and are taken off the webhook -> CREATED time.
    waits_ms = (INSTALL_POLL_SECONDS + PANEL_INSTALL_SECONDS) * 1000
    added = _minus(steady_stages["webhook_to_created_visible"], waits_ms)
    light_added = _minus(light_stages["webhook_to_created_visible"], waits_ms)
    ours_normal, ours_slowed = latency_ms(light_webhooks.seconds), latency_ms(slowed_webhooks.seconds)
    ours_burst = latency_ms(burst_webhooks.seconds)
    ours_growth = ours_slowed["p99_ms"] - ours_normal["p99_ms"]
    allowed_growth = TARGET_PANEL_SHARE * panel_latency * 1000

    result.details = {
        "burst": {
            "orders": orders,
            "seconds_to_all_created": round(burst.all_created - burst.started, 2),
            "seconds_to_all_placed": round(burst.all_placed - burst.started, 2),
            "cpu_seconds": {k: round(v, 2) for k, v in burst.cpu.items()},
            "cpu_ms_per_order": {k: round(v * 1000 / orders, 2) for k, v in burst.cpu.items()},
            "cpu_ms_per_order_total": round(cpu_ms, 2),
            "stages": _stage_latencies(burst_stages),
            "webhooks_as_stripe_sees_them": burst_webhooks.summary(),
        },
        "fixed_rate": {
            "orders": rated_orders,
            "rate": rate,
            "achieved_rate": round(rated_orders / (steady.all_placed - steady.started), 2),
            "stages": _stage_latencies(steady_stages),
            "added_latency_minus_waits": {**latency_ms([v / 1000 for v in added]), "waits_subtracted_ms": waits_ms},
        },
        "half_sustained_rate": {
            "orders": light_orders,
            "rate": light_rate,
            "achieved_rate": round(light_orders / (light.all_placed - light.started), 2),
            "stages": _stage_latencies(light_stages),
            "added_latency_minus_waits": {
                **latency_ms([v / 1000 for v in light_added]),
                "waits_subtracted_ms": waits_ms,
            },
            "webhooks_as_stripe_sees_them": light_webhooks.summary(),
        },
        "half_sustained_rate_panel_slowed": {
            "orders": light_orders,
            "rate": light_rate,
            "panel_latency_seconds": panel_latency,
            "achieved_rate": round(light_orders / (slowed.all_placed - slowed.started), 2),
            "webhooks_as_stripe_sees_them": slowed_webhooks.summary(),
            "webhook_p99_growth_ms": round(ours_growth, 2),
        },
        "per_order": {
            "commits": round(commits_per_order, 2),
            "deliveries": round(deliveries_per_order, 2),
            "counting": cost.summary(burst.cpu),
        },
        "references": {
            "broker_round_trips_per_s": round(broker_rate, 1),
            "postgres_commits_per_s": round(pg_rate, 1),
            "machine_limit_orders_per_s": round(machine_limit, 1),
        },
        "seed_style_reference": seed.details(),
        "peak_rss_mb": rss,
    }
    seed_name = "seed-style reference, same burst"
    result.add(
        Figure(
            "sustained throughput",
            sustained,
            "orders/s",
            machine_limit,
            "broker+PostgreSQL limit for one order's hops and commits",
            f">= {TARGET_SUSTAINED:.0f}/s and >= {TARGET_LIMIT_RATIO}x ref",
            sustained >= TARGET_SUSTAINED and sustained >= TARGET_LIMIT_RATIO * machine_limit,
        )
    )
    result.add(
        Figure(
            "sustained, Spawnpoint / seed-style",
            sustained,
            "orders/s",
            seed.burst.sustained,
            seed_name,
            f">= {TARGET_SEED_RATIO:.1f}x ref" + ("" if seed.burst.complete else " (reference incomplete)"),
            sustained >= TARGET_SEED_RATIO * seed.burst.sustained if seed.burst.complete else None,
        )
    )
    result.add(
        Figure(
            "CPU per order, services + stand-ins",
            cpu_ms,
            "ms",
            seed.burst.cpu_ms_per_order,
            "seed-style process + its panel",
            f"<= {TARGET_CPU_MS:.0f} ms",
            cpu_ms <= TARGET_CPU_MS,
        )
    )
    result.add(
        Figure(
            "commits per order",
            commits_per_order,
            "commits",
            seed.commits_per_order,
            "seed-style reference",
            f"<= {TARGET_COMMITS:.0f}",
            commits_per_order <= TARGET_COMMITS,
        )
    )
    result.add(
        Figure(
            "deliveries per order",
            deliveries_per_order,
            "messages",
            None,
            None,
            f"<= {TARGET_DELIVERIES:.0f}",
            deliveries_per_order <= TARGET_DELIVERIES,
        )
    )
    waits = f"minus {PANEL_INSTALL_SECONDS:g} s install + {INSTALL_POLL_SECONDS:g} s install poll"
    light_name = f"same at {light_rate:g}/s (half sustained)"
    result.add(
        Figure(
            f"added latency p99 at {rate:g}/s, webhook -> CREATED {waits}",
            percentile(added, 99),
            "ms",
            percentile(light_added, 99),
            light_name,
            f"<= {TARGET_ADDED_P99_MS:.0f} ms",
            percentile(added, 99) <= TARGET_ADDED_P99_MS,
        )
    )
    result.add(
        Figure(
            f"added latency p50 at {rate:g}/s, webhook -> CREATED {waits}",
            percentile(added, 50),
            "ms",
            percentile(light_added, 50),
            light_name,
        )
    )
    result.add(
        Figure("webhook p99 during the burst (Stripe's side)", ours_burst["p99_ms"], "ms", seed.burst.p99_ms, seed_name)
    )
    delay = f"panel +{panel_latency:g} s"
    result.add(
        Figure(
            f"webhook p99 at {light_rate:g}/s, {delay}",
            ours_slowed["p99_ms"],
            "ms",
            ours_normal["p99_ms"],
            "same rate, panel at once",
        )
    )
    result.add(
        Figure(
            f"webhook p99 independent of the panel: growth with {delay}",
            ours_growth,
            "ms",
            seed.p99_growth_ms,
            "seed-style growth, same delay",
            f"<= {allowed_growth:.0f} ms ({TARGET_PANEL_SHARE:.0%} of the delay)",
            ours_growth <= allowed_growth,
        )
    )
    for figure in seed_style.figures(seed, pg_rate):
        result.add(figure)
    result.add(Figure("broker round trips", broker_rate, "msg/s", None, None))
    result.add(Figure("PostgreSQL commits", pg_rate, "commits/s", None, None))
    return result


def _minus(seconds: list[float], ms: float) -> list[float]:
    """Samples in ms with a fixed wait taken off."""
    return [value * 1000 - ms for value in seconds]


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
