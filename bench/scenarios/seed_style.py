"""seed-reference: the synchronous design (``bench/seed_reference.py``) under the pipeline's burst, measured in
the same run as the pipeline so that "Spawnpoint sustained / seed-style sustained" compares like with like.

Why: the pipeline's own references (the broker's and PostgreSQL's limits) say how close it is to the
machine; they do not say whether splitting the work over services was worth it. The seed-style app does
the order's essential work in one process and one database, in the webhook request: verify, mark paid,
create the server on the panel, mark created. Its webhook p99 measured again with the panel slowed shows
what the synchronous design makes Stripe wait for.

Set-up, not timed: a throw-away database ``sp_bench_seed_<run>`` on the running PostgreSQL (dropped
afterwards) holding the orders as ``pending``; a panel stand-in of its own, started with the bench's flags
(no rate limit, installs at once), with room for every server and one panel user made through its API.
Each run posts one ``checkout.session.completed`` per order from a separate process. The events are a
real event of the Stripe stand-in (the pipeline's, or one made on a stand-in started here) with the
order's ids, serialized and signed exactly as the stand-in serializes and signs its deliveries.

The burst is the pipeline burst's load: the same number of orders, closed loop with the pipeline driver's
concurrency (sustained rate, CPU and commits per order, webhook p99). Then the same offered rate as the
pipeline's half-sustained run, twice: the panel at once, then every create delayed by ``panel_latency``
seconds through the panel stand-in's ``/_fake/faults`` control API (a proxy delay in front of the panel).
The slowed pair is offered below capacity on purpose: under the closed loop the reference is CPU-bound and
its latency is queueing (64 connections / its rate), which would hide the panel's delay.

What it leaves out, in its favour: placing the order and opening the Checkout Session, which the
pipeline's sustained rate includes; and the Stripe stand-in's CPU (here the load process plays Stripe).
"""

from __future__ import annotations

import asyncio
import copy
import os
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx

from devstack import BIN, PANEL_KEY, WEBHOOK_SECRET, free_port
from setup_infra import pg_server_url
from spawnpoint_kit.db import asyncpg_dsn, drop_database, ensure_database
from stripe_fake.events import serialize
from stripe_fake.signing import signature_header
from stripe_fake.webhooks import CONTENT_TYPE, USER_AGENT

from ..client import Pool, make_room
from ..counters import commits as count_commits
from ..counters import cpu_seconds, database_name, settled_commits
from ..load import LoadResult, Request, closed_loop, fixed_rate
from ..processes import serving, uvicorn_app
from ..references import postgres_commits
from ..seed_reference import TABLE
from ..stats import Figure, ScenarioResult, latency_ms
from ..system import PANEL_ARGS, RUN_LOGS

DEFAULT_PANEL_LATENCY = 0.5


@dataclass
class SeedRun:
    """One run of the reference: every order's webhook, closed loop (``rate`` None) or offered at ``rate``
    per second, with the panel's creates delayed by ``panel_latency``."""

    panel_latency: float
    rate: float | None
    order_ids: list[uuid.UUID]
    load: LoadResult
    cpu_seconds: dict[str, float]
    created: int = 0

    @property
    def sustained(self) -> float:
        """Orders marked created per second of the run (each is created before its webhook answers)."""
        return self.created / self.load.elapsed if self.load.elapsed else 0.0

    @property
    def complete(self) -> bool:
        """Every webhook answered 200 and every order was created (a shared PostgreSQL out of connection
        slots, for one, makes the reference fail fast, which would flatter its rate)."""
        return self.created == len(self.order_ids) and self.load.ok(200) == len(self.order_ids)

    @property
    def cpu_ms_per_order(self) -> float:
        return sum(self.cpu_seconds.values()) * 1000 / max(1, len(self.order_ids))

    @property
    def p99_ms(self) -> float:
        return latency_ms(self.load.latencies)["p99_ms"]

    def summary(self) -> dict[str, Any]:
        return {
            "panel_latency_seconds": self.panel_latency,
            "offered_rate": self.rate if self.rate is not None else "closed loop",
            "orders": len(self.order_ids),
            "created": self.created,
            "complete": self.complete,
            "seconds": round(self.load.elapsed, 2),
            "sustained_orders_per_s": round(self.sustained, 1),
            "statuses": self.load.statuses,
            "errors": self.load.errors,
            "webhook": latency_ms(self.load.latencies),
            "cpu_seconds": {k: round(v, 2) for k, v in self.cpu_seconds.items()},
            "cpu_ms_per_order": round(self.cpu_ms_per_order, 2),
        }


@dataclass
class SeedResult:
    """The burst (closed loop, the pipeline burst's orders and concurrency), then the same offered rate
    twice: the panel at once, then slowed. Under the closed loop the reference is CPU-bound and its
    latency is queueing (connections / rate), which hides a slow panel; below capacity it does not."""

    orders: int
    concurrency: int
    burst: SeedRun
    paced: SeedRun
    paced_slowed: SeedRun
    commits_per_order: float
    notes: list[str] = field(default_factory=list)

    @property
    def p99_growth_ms(self) -> float:
        """How much the webhook's p99 grew at the offered rate when the panel was slowed."""
        return self.paced_slowed.p99_ms - self.paced.p99_ms

    def details(self) -> dict[str, Any]:
        return {
            "orders": self.orders,
            "concurrency": self.concurrency,
            "burst": self.burst.summary(),
            "paced_panel_at_once": self.paced.summary(),
            "paced_panel_slowed": self.paced_slowed.summary(),
            "webhook_p99_growth_ms": round(self.p99_growth_ms, 2),
            "commits_per_order": round(self.commits_per_order, 2),
            "notes": self.notes,
        }


# -- events ------------------------------------------------------------------------------------------------


def capture_event() -> dict[str, Any]:
    """A real ``checkout.session.completed`` from a Stripe stand-in started for it (deliveries paused):
    when the reference runs without the pipeline's stack to take one from."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [
        str(BIN / "stripe-fake"),
        "--port",
        str(port),
        "--webhook-url",
        "http://127.0.0.1:9/unused",
        "--webhook-secret",
        WEBHOOK_SECRET,
    ]
    order_id = str(uuid.uuid4())
    with serving(argv, f"{url}/_fake/health"), httpx.Client(base_url=url, timeout=10) as client:
        client.post("/_fake/deliveries/pause").raise_for_status()
        session = client.post(
            "/v1/checkout/sessions",
            headers={"Authorization": "Bearer sk_test_bench"},
            data={
                "mode": "payment",
                "ui_mode": "embedded_page",
                "line_items[0][price_data][currency]": "eur",
                "line_items[0][price_data][unit_amount]": "500",
                "line_items[0][price_data][product_data][name]": "Minecraft (Paper) – Starter",
                "line_items[0][price_data][product_data][metadata][game_id]": "minecraft-paper",
                "line_items[0][price_data][product_data][metadata][plan_id]": "starter",
                "line_items[0][quantity]": "1",
                "metadata[serverOrderId]": order_id,
                "client_reference_id": order_id,
                "payment_intent_data[metadata][serverOrderId]": order_id,
                "return_url": "http://localhost:3000/orders/return?session_id={CHECKOUT_SESSION_ID}",
                "customer_email": "seed@bench.test",
            },
        )
        session.raise_for_status()
        client.post(f"/_fake/sessions/{session.json()['id']}/pay", json={"outcome": "paid"}).raise_for_status()
        events = client.get("/_fake/events", params={"type": "checkout.session.completed"}).json()["data"]
    return dict(events[0])


def _delivery(template: dict[str, Any], order_id: uuid.UUID) -> Request:
    """The template event for ``order_id`` (fresh event and session ids), as the stand-in delivers it."""
    event = copy.deepcopy(template)
    event["id"] = "evt_1" + uuid.uuid4().hex[:23]
    event["created"] = int(time.time())
    event["pending_webhooks"] = 1
    session = event["data"]["object"]
    session["id"] = "cs_test_" + uuid.uuid4().hex + uuid.uuid4().hex[:26]
    session["client_reference_id"] = str(order_id)
    session["metadata"] = {**(session.get("metadata") or {}), "serverOrderId": str(order_id)}
    body = serialize(event)
    headers = {
        "Content-Type": CONTENT_TYPE,
        "User-Agent": USER_AGENT,
        "Stripe-Signature": signature_header(body, [WEBHOOK_SECRET], int(time.time())),
        "Accept": "*/*; q=0.5, application/xml",
        "Cache-Control": "no-cache",
    }
    return ("POST", "/webhooks/stripe", headers, body)


# -- set-up --------------------------------------------------------------------------------------------------


async def _prepare_panel(url: str, servers: int) -> int:
    """Room for ``servers`` on the panel stand-in and the customer's panel user; returns the user's id."""
    panel = Pool(url, size=2)
    try:
        await make_room(panel, servers)
        user = await panel.json(
            "POST",
            "/api/application/users",
            token=PANEL_KEY,
            headers={"Accept": "application/json"},
            body={
                "external_id": "seed-bench",
                "email": "seed@bench.test",
                "username": "seedbench",
                "first_name": "Seed",
                "last_name": "Bench",
            },
        )
        return int(user["attributes"]["id"])
    finally:
        await panel.close()


async def _panel_delay(url: str, seconds: float) -> None:
    panel = Pool(url, size=1)
    try:
        await panel.json("DELETE", "/_fake/faults")
        if seconds > 0:
            await panel.json(
                "POST",
                "/_fake/faults",
                body={"latency_seconds": seconds, "method": "POST", "path_prefix": "/api/application/servers"},
            )
    finally:
        await panel.close()


async def _create_orders(db_url: str, order_ids: list[uuid.UUID], panel_user: int) -> None:
    await ensure_database(db_url)
    conn = await asyncpg.connect(asyncpg_dsn(db_url))
    try:
        await conn.execute(TABLE)
        await conn.copy_records_to_table(
            "orders",
            records=[(oid, f"bench seed-{i}", panel_user) for i, oid in enumerate(order_ids)],
            columns=["id", "server_name", "panel_user_id"],
        )
    finally:
        await conn.close()


async def _created(db_url: str, order_ids: list[uuid.UUID]) -> int:
    conn = await asyncpg.connect(asyncpg_dsn(db_url))
    try:
        return int(
            await conn.fetchval("SELECT count(*) FROM orders WHERE status = 'created' AND id = ANY($1)", order_ids)
        )
    finally:
        await conn.close()


# -- the measurement -------------------------------------------------------------------------------------


def measure(
    *,
    orders: int,
    concurrency: int = 64,
    panel_latency: float = DEFAULT_PANEL_LATENCY,
    paced_rate: float | None = None,
    paced_orders: int = 100,
    template: dict[str, Any] | None = None,
) -> SeedResult:
    """The burst of ``orders`` webhooks, then ``paced_orders`` offered at ``paced_rate`` per second (default:
    half the burst's rate) with the panel at once and again with its creates slowed by ``panel_latency``."""
    event = template if template is not None else capture_event()
    run_id = uuid.uuid4().hex[:8]
    log_dir = RUN_LOGS / f"seed-{run_id}"
    log_dir.mkdir(parents=True, exist_ok=True)
    db_url = f"{pg_server_url()}/sp_bench_seed_{run_id}"
    database = database_name(db_url)
    warm_up = [uuid.uuid4() for _ in range(concurrency)]
    burst_ids = [uuid.uuid4() for _ in range(orders)]
    paced_ids = [[uuid.uuid4() for _ in range(paced_orders)] for _ in range(2)]
    everything = [*warm_up, *burst_ids, *paced_ids[0], *paced_ids[1]]
    panel_port, app_port = free_port(), free_port()
    panel_url = f"http://127.0.0.1:{panel_port}"
    panel_argv = [
        str(BIN / "panel-fake"),
        "--port",
        str(panel_port),
        "--flavor",
        "pterodactyl",
        "--app-key",
        PANEL_KEY,
        *PANEL_ARGS,
    ]
    env = {
        "SEED_DB_URL": db_url,
        "SEED_PANEL_KEY": PANEL_KEY,
        "SEED_PANEL_URL": panel_url,
        "SEED_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "SEED_DB_POOL_SIZE": os.environ.get("BENCH_DB_POOL_SIZE", "20"),
    }
    try:
        with serving(panel_argv, f"{panel_url}/_fake/health", log=log_dir / "panel-fake.log") as panel_proc:
            panel_user = asyncio.run(_prepare_panel(panel_url, len(everything) + 10))
            asyncio.run(_create_orders(db_url, everything, panel_user))
            with uvicorn_app("bench.seed_reference:app", app_port, env=env, log=log_dir / "app.log") as app_proc:
                procs = {"seed-reference": app_proc.pid, "panel-fake": panel_proc.pid}

                def one_run(ids: list[uuid.UUID], rate: float | None, latency: float) -> SeedRun:
                    asyncio.run(_panel_delay(panel_url, latency))
                    requests = [_delivery(event, oid) for oid in ids]  # signed just before sending
                    cpu_before = {name: cpu_seconds(pid) for name, pid in procs.items()}
                    if rate is None:
                        load = closed_loop("127.0.0.1", app_port, requests, concurrency=concurrency)
                    else:
                        load = fixed_rate("127.0.0.1", app_port, requests, rate=rate, connections=concurrency)
                    cpu = {name: cpu_seconds(pid) - cpu_before[name] for name, pid in procs.items()}
                    return SeedRun(latency, rate, ids, load, cpu)

                # Not timed: the pool's connections and the panel client's are opened, as a running
                # service's are (the pipeline's services answered their readiness checks before the burst).
                one_run(warm_up, None, 0.0)
                commits_before = asyncio.run(settled_commits([database]))
                burst = one_run(burst_ids, None, 0.0)
                rate = paced_rate if paced_rate is not None else round(max(0.5, burst.load.throughput / 2), 1)
                paced = one_run(paced_ids[0], rate, 0.0)
                slowed = one_run(paced_ids[1], rate, panel_latency)
            # The app has exited: its backends flushed their counters.
            commits_after = asyncio.run(count_commits([database], settle=0.5))
        for done in (burst, paced, slowed):
            done.created = asyncio.run(_created(db_url, done.order_ids))
    finally:
        asyncio.run(drop_database(db_url))
    total_created = max(1, burst.created + paced.created + slowed.created)
    return SeedResult(
        orders=orders,
        concurrency=concurrency,
        burst=burst,
        paced=paced,
        paced_slowed=slowed,
        commits_per_order=(commits_after - commits_before) / total_created,
        notes=[
            "webhooks from a separate process, signed as the Stripe stand-in signs its deliveries",
            "leaves out placing the order and opening the Checkout Session, which the pipeline's rate includes",
            "CPU: the reference process and its panel stand-in (the load process plays Stripe)",
            f"{len(warm_up)} webhooks before the runs, not timed, to open the app's connections",
            "commits per order over the three runs, PostgreSQL's xact_commit of its database",
        ],
    )


def run(
    *,
    orders: int = 2000,
    concurrency: int = 64,
    panel_latency: float = DEFAULT_PANEL_LATENCY,
    paced_orders: int = 100,
) -> ScenarioResult:
    """The reference alone (``python -m bench seed-reference``); the pipeline scenario runs it too."""
    result = ScenarioResult(
        "seed-reference",
        {
            "orders": orders,
            "concurrency": concurrency,
            "panel_latency_seconds": panel_latency,
            "paced_orders": paced_orders,
        },
    )
    seed = measure(orders=orders, concurrency=concurrency, panel_latency=panel_latency, paced_orders=paced_orders)
    pg_rate = asyncio.run(postgres_commits(f"{pg_server_url()}/sp_bench_ref_{uuid.uuid4().hex[:6]}"))
    result.details = {**seed.details(), "postgres_commits_per_s": round(pg_rate, 1)}
    for figure in figures(seed, pg_rate):
        result.add(figure)
    return result


def figures(seed: SeedResult, pg_rate: float) -> list[Figure]:
    """The reference's own figures: its sustained rate beside what PostgreSQL allows for its commits, its
    webhook p99 in the burst, and at the offered rate with the panel slowed beside the panel at once."""
    limit = pg_rate / max(seed.commits_per_order, 1)
    burst = seed.burst
    incomplete = "" if burst.complete else f" (INCOMPLETE: {burst.created} of {seed.orders} created)"
    return [
        Figure(
            "seed-style sustained" + incomplete, burst.sustained, "orders/s", limit, "PostgreSQL limit for its commits"
        ),
        Figure("seed-style webhook p99, burst", burst.p99_ms, "ms"),
        Figure(
            f"seed-style webhook p99 at {seed.paced.rate:g}/s, panel +{seed.paced_slowed.panel_latency:g} s",
            seed.paced_slowed.p99_ms,
            "ms",
            seed.paced.p99_ms,
            "same rate, panel at once",
        ),
        Figure("seed-style CPU per order", burst.cpu_ms_per_order, "ms"),
        Figure("seed-style commits per order", seed.commits_per_order, "commits"),
    ]
