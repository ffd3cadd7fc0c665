"""What one order costs the provisioner in CPU, handler by handler, against a real database and panel stand-in.

Every paid order goes through the provisioner as in the pipeline benchmark (``bench/system.py``): its
DesiredServerStateChanged (running, version 1) and its OrderPaid are handled through the same
``Subscription`` objects the consumers use; the install watcher's rounds follow the install (first check
``--poll`` seconds after the create, as ``INSTALL_POLL_SECONDS`` in the bench); and whatever the watcher
sent back to the desired-state queue is handled too. The panel is ``sandbox/panel-fake`` in a subprocess
(installing at once, no rate limit), the database a throw-away one migrated to head.

Printed: this process's CPU (``time.process_time``) per order for each phase and in all, the panel requests
per order by route (from the stand-in's request log) and the database transactions per order (from
``pg_stat_database``). The broker's share (the relay publishing, FastStream delivering) is not in it, nor are
the panel's and PostgreSQL's own CPU. Run it against the provisioner as it is and against an older copy::

    scripts/setup_env.sh .venv/bin/python services/provisioner/benchmarks/order_cost.py
    git archive HEAD services/provisioner | tar -x -C /tmp/prov-before
    PYTHONPATH=/tmp/prov-before/services/provisioner/src scripts/setup_env.sh .venv/bin/python \\
        services/provisioner/benchmarks/order_cost.py
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx

import provisioner
from provisioner.adapters.eggs import EggCache
from provisioner.adapters.panel import PanelClient
from provisioner.adapters.rate_gate import RateGate
from provisioner.domain.retry import RetryPolicy
from provisioner.entrypoints.consumers import desired_state_subscription, order_paid_subscription
from provisioner.queues import PROVISIONER_DESIRED_STATE, PROVISIONER_ORDER_PAID
from provisioner.service_layer.converge import ConvergeServer
from provisioner.service_layer.install_watch import InstallWatcher
from provisioner.service_layer.provision import ProvisionOrderPaid
from provisioner.service_layer.unit_of_work import SqlProvisionerUnitOfWork
from spawnpoint_contracts import (
    Deploy,
    DesiredServerState,
    DesiredServerStateChanged,
    DesiredServerStateChangedPayload,
    FeatureLimits,
    Limits,
    OrderPaid,
    OrderPaidPayload,
    OrderSnapshot,
    RentalCause,
    ServerSpec,
)
from spawnpoint_kit.db import asyncpg_dsn, drop_database, make_engine, make_session_factory, prepare_database
from spawnpoint_kit.logs import configure_logging
from spawnpoint_kit.messaging.delivery import Delivery
from spawnpoint_kit.messaging.topology import Topology

PACKAGE = Path(provisioner.__file__).resolve().parents[2]
"""The provisioner package measured (``services/provisioner``, or the older copy on ``PYTHONPATH``)."""
BIN = Path(sys.executable).parent
PANEL_KEY = "ptla_spawnpointdevkey0000000000000000000000000000"
TOPOLOGY = Topology("benchprov.")
LIMITS = Limits(memory=512, swap=0, disk=1024, io=500, cpu=100)
FEATURES = FeatureLimits(databases=0, backups=0, allocations=0)
_ID = re.compile(r"/(\d+|[0-9a-f-]{36}|sp-[0-9a-f]+|bench-[\w-]+)(?=/|$)")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _order(i: int, run: str) -> tuple[OrderPaid, DesiredServerStateChanged]:
    """A new customer's Vanilla Minecraft server (the stand-in's seeded nest 1, egg 2, locations 1 and 2)."""
    order = OrderSnapshot(
        order_id=uuid.uuid4(),
        user_id=f"bench-{run}-{i}",
        email=f"bench-{run}-{i}@example.test",
        game_id="minecraft-vanilla",
        game_name="Minecraft",
        plan_id="starter",
        plan_name="Starter",
        server_name=f"bench {i}",
        amount=500,
        currency="eur",
        server_spec=ServerSpec(
            nest_id=1,
            egg_id=2,
            docker_image="ghcr.io/pterodactyl/yolks:java_21",
            startup="java -Xms128M -XX:MaxRAMPercentage=95.0 -jar {{SERVER_JARFILE}}",
            limits=LIMITS,
            feature_limits=FEATURES,
            deploy=Deploy(locations=[1, 2]),
        ),
    )
    paid = OrderPaid(
        order_id=order.order_id,
        correlation_id=f"corr-{i}",
        producer="payment-service",
        payload=OrderPaidPayload(
            session_id=f"cs_{i}", payment_intent=f"pi_{i}", amount=order.amount, currency=order.currency, order=order
        ),
    )
    desired = DesiredServerStateChanged(
        order_id=order.order_id,
        correlation_id=f"corr-{i}",
        producer="payment-service",
        payload=DesiredServerStateChangedPayload(
            version=1,
            state=DesiredServerState.RUNNING,
            reason=RentalCause.ACTIVATED,
            plan_id="starter",
            limits=LIMITS,
            feature_limits=FEATURES,
        ),
    )
    return paid, desired


async def _bounded(concurrency: int, jobs: list[Callable[[], Awaitable[None]]]) -> None:
    gate = asyncio.Semaphore(concurrency)

    async def run(job: Callable[[], Awaitable[None]]) -> None:
        async with gate:
            await job()

    await asyncio.gather(*(run(job) for job in jobs))


async def _wait_panel(url: str) -> None:
    deadline = time.monotonic() + 30
    async with httpx.AsyncClient() as client:
        while True:
            try:
                if (await client.get(f"{url}/_fake/servers")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the panel stand-in did not start")
            await asyncio.sleep(0.1)


async def _panel_counts(url: str) -> collections.Counter[str]:
    async with httpx.AsyncClient() as client:
        counts = (await client.get(f"{url}/_fake/requests/counts")).json()["counts"]
    by_route: collections.Counter[str] = collections.Counter()
    for key, count in counts.items():
        method, _, path = key.partition(" ")
        by_route[f"{method} {_ID.sub('/{id}', path.removeprefix('/api/application'))}"] += count
    return by_route


async def _transactions(url: str) -> int:
    conn = await asyncpg.connect(asyncpg_dsn(url.rsplit("/", 1)[0] + "/postgres"))
    try:
        await conn.execute("SELECT pg_stat_clear_snapshot()")
        value = await conn.fetchval(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = $1", url.rsplit("/", 1)[1]
        )
        return int(value or 0)
    finally:
        await conn.close()


async def _resent(url: str, queue: str, seen: set[uuid.UUID]) -> list[bytes]:
    """Bodies the watcher sent back to the desired-state queue (read from the outbox, as the relay would)."""
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        rows = await conn.fetch("SELECT id, body FROM outbox WHERE exchange = '' AND routing_key = $1", queue)
    finally:
        await conn.close()
    fresh = [r for r in rows if r["id"] not in seen]
    seen.update(r["id"] for r in fresh)
    return [bytes(r["body"]) for r in fresh]


async def measure(orders: int, concurrency: int, poll: float, panel_url: str, db_url: str) -> dict[str, Any]:
    engine = make_engine(db_url, pool_size=20)
    sessions = make_session_factory(engine)

    def unit_of_work() -> SqlProvisionerUnitOfWork:
        return SqlProvisionerUnitOfWork(sessions, TOPOLOGY)

    panel = PanelClient(
        panel_url, PANEL_KEY, flavor="pterodactyl", timeout=30.0, gate=RateGate(per_minute=1e6, burst=1000)
    )
    policy = RetryPolicy(attempts=4, max_seconds=30, initial_seconds=0.5, max_wait_seconds=8, broker_delays=(30,))
    provision = ProvisionOrderPaid(
        panel=panel,
        eggs=EggCache(panel),
        retry=policy,
        topology=TOPOLOGY,
        queue=PROVISIONER_ORDER_PAID,
        install_deadline=timedelta(hours=1),
        first_install_check=timedelta(seconds=poll),
    )
    converge = ConvergeServer(panel=panel, retry=policy, topology=TOPOLOGY, queue=PROVISIONER_DESIRED_STATE)
    desired_queue = TOPOLOGY.queue_name(PROVISIONER_DESIRED_STATE)
    watcher = InstallWatcher(unit_of_work, panel, poll_seconds=poll, desired_state_queue=desired_queue)
    paid_sub = order_paid_subscription(provision, unit_of_work)
    desired_sub = desired_state_subscription(converge, unit_of_work)
    paid_queue = TOPOLOGY.queue_name(PROVISIONER_ORDER_PAID)

    async def one(paid: OrderPaid, desired: DesiredServerStateChanged) -> None:
        await desired_sub.handle(desired, Delivery.of(desired, desired_queue))
        await paid_sub.handle(paid, Delivery.of(paid, paid_queue))

    async def drive(n: int, tag: str) -> dict[str, float]:
        """One burst of ``n`` orders; CPU seconds by phase (the benchmark's own reads are not counted)."""
        events = [_order(i, f"{tag}{uuid.uuid4().hex[:6]}") for i in range(n)]
        cpu: dict[str, float] = {}
        started = time.process_time()
        await _bounded(concurrency, [lambda p=p, d=d: one(p, d) for p, d in events])  # type: ignore[misc]
        cpu["paid"] = time.process_time() - started

        cpu["install"] = 0.0
        deadline = time.monotonic() + 60
        ids = [p.order_id for p, _ in events]
        while True:
            await asyncio.sleep(poll * 1.5)  # not CPU: the first checks fall due
            started = time.process_time()
            while await watcher.watch_round():
                pass
            cpu["install"] += time.process_time() - started
            own_reads[0] += 1
            if await _all_ready(db_url, ids) or time.monotonic() > deadline:
                break

        own_reads[0] += 1
        resends = [DesiredServerStateChanged.model_validate_json(b) for b in await _resent(db_url, desired_queue, seen)]
        started = time.process_time()
        await _bounded(
            concurrency,
            [lambda e=e: desired_sub.handle(e, Delivery.of(e, desired_queue)) for e in resends],  # type: ignore[misc]
        )
        cpu["resent"] = time.process_time() - started
        cpu["resent_count"] = len(resends)
        return cpu

    seen: set[uuid.UUID] = set()
    own_reads = [0]
    """The benchmark's own transactions on the database (its progress reads), taken off the count."""
    try:
        await drive(max(20, orders // 5), "warm")  # connections, prepared statements, the egg cache
        panel_before = await _panel_counts(panel_url)
        await engine.dispose()  # flushes the pool's statistics, so the count below starts clean
        tx_before = await _transactions(db_url)
        own_reads[0] = 0
        cpu = await drive(orders, "run")
        await engine.dispose()
        await asyncio.sleep(0.6)
        tx_after = await _transactions(db_url)
        panel_after = await _panel_counts(panel_url)
    finally:
        await panel.aclose()
        await engine.dispose()
    calls = {route: (panel_after[route] - panel_before[route]) / orders for route in panel_after}
    return {
        "cpu": cpu,
        "panel_calls": {k: v for k, v in sorted(calls.items()) if v},
        "transactions": (tx_after - tx_before - own_reads[0]) / orders,
    }


async def _all_ready(url: str, ids: list[uuid.UUID]) -> bool:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        ready = await conn.fetchval(
            "SELECT count(*) FROM provisionings WHERE order_id = ANY($1::uuid[]) AND status = 'ready'", ids
        )
    finally:
        await conn.close()
    return int(ready) == len(ids)


async def main_async(args: argparse.Namespace) -> None:
    configure_logging("provisioner", level="WARNING")
    port = _free_port()
    panel_url = f"http://127.0.0.1:{port}"
    panel_proc = await asyncio.create_subprocess_exec(
        *(str(BIN / "panel-fake"), "--port", str(port), "--rate-limit", "0", "--install-seconds", "0"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    db_url = f"{os.environ['SPAWNPOINT_PG_URL']}/sp_bench_prov_{uuid.uuid4().hex[:8]}"
    try:
        await _wait_panel(panel_url)
        await prepare_database(PACKAGE / "alembic.ini", db_url)
        configure_logging("provisioner", level="WARNING")  # the migrations' logging set-up replaced ours
        result = await measure(args.orders, args.concurrency, args.poll, panel_url, db_url)
    finally:
        panel_proc.terminate()
        await asyncio.wait_for(panel_proc.wait(), timeout=10)
        await drop_database(db_url)
    cpu = result["cpu"]
    per = {k: v * 1000 / args.orders for k, v in cpu.items() if k != "resent_count"}
    print(f"provisioner sources: {PACKAGE}")
    print(f"orders: {args.orders}, concurrency {args.concurrency}, install poll {args.poll} s")
    print(
        "CPU ms per order: "
        + ", ".join(f"{k} {v:.2f}" for k, v in per.items())
        + f"; total {sum(per.values()):.2f} (resent deliveries: {int(cpu['resent_count'])})"
    )
    print(f"database transactions per order: {result['transactions']:.2f}")
    print("panel requests per order: " + json.dumps(result["panel_calls"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=150)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--poll", type=float, default=0.2, help="INSTALL_POLL_SECONDS (the bench's 0.2 s)")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
