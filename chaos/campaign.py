"""One campaign: its own stack, a supervisor, customer processes, the faults, and the audit at the end."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from devstack import SERVICES, Stack, StackConfig, drop_databases, drop_namespace
from spawnctl.system import ALL_QUEUES
from spawnpoint_kit.auth import mint_token
from spawnpoint_kit.db import asyncpg_dsn
from spawnpoint_kit.messaging import dlq
from spawnpoint_kit.messaging.topology import Topology
from spawnpoint_kit.settings import CommonSettings

from .faults import Fault, Faults, can_control_infrastructure, schedule

ROOT = Path(__file__).resolve().parents[1]
LOGS = ROOT / ".run" / "chaos-logs"


def chaos_config() -> StackConfig:
    """Production-like (INFO logs, no reload) on free ports with its own databases and namespace; the
    retry schedule and sweeper shortened so that a campaign ends in minutes, not hours."""
    run_id = uuid.uuid4().hex[:8]
    config = StackConfig.for_tests(run_id, LOGS / run_id)
    config.database_prefix = f"sp_chaos_{run_id}"
    config.namespace = f"chaos{run_id}."
    config.panel_args = ["--install-seconds", "1"]
    config.extra_env = {**config.extra_env, "DB_POOL_SIZE": "5"}
    config.per_process_env = {
        "provisioner": {
            "PROVISION_RETRY_DELAYS": "5,15,30,60",
            "INSTALL_POLL_SECONDS": "0.5",
            "PANEL_TIMEOUT_SECONDS": "10",
        },
        "payment-service": {"PAYMENT_SWEEP_INTERVAL_SECONDS": "5", "PAYMENT_SWEEP_AFTER_SECONDS": "5"},
    }
    return config


class Supervisor:
    """Restarts any process of the stack that died, within about two seconds (an orchestrator's job)."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.restarts: dict[str, int] = {}
        self._stop = asyncio.Event()

    async def run(self) -> None:
        while not self._stop.is_set():
            for name, proc in list(self.stack.procs.items()):
                if proc.poll() is not None:
                    await asyncio.sleep(1.0)  # as an orchestrator's restart delay
                    self.stack.respawn(name)
                    self.restarts[name] = self.restarts.get(name, 0) + 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=0.5)

    def stop(self) -> None:
        self._stop.set()


@dataclass
class Report:
    orders: int
    faults_injected: list[str]
    infrastructure_faults: bool
    paid: int = 0
    created: int = 0
    failed: int = 0
    lost: list[str] = field(default_factory=list)
    """Paid, and at the deadline neither a server installed for it nor its money back."""
    doubled: list[str] = field(default_factory=list)
    """Orders with more than one server on the panel."""
    wrong_refunds: list[str] = field(default_factory=list)
    """Orders refunded although their server exists (or refunded more than once)."""
    not_terminal: list[str] = field(default_factory=list)
    customer_errors: list[str] = field(default_factory=list)
    server_errors: dict[str, int] = field(default_factory=dict)
    """Unhandled errors (500 answers, crashed handlers) per process, from its log: patient customers retry
    them, so the other figures alone would not show them."""
    dead_letters: dict[str, int] = field(default_factory=dict)
    kills: dict[str, int] = field(default_factory=dict)
    restarts: dict[str, int] = field(default_factory=dict)
    customer_retries: int = 0
    sweeper_fulfilments: int = 0
    seconds: float = 0.0

    @property
    def clean(self) -> bool:
        return not (
            self.lost
            or self.doubled
            or self.wrong_refunds
            or self.not_terminal
            or self.customer_errors
            or any(self.server_errors.values())
            or any(self.dead_letters.values())
        )

    def figures(self) -> list[tuple[str, str]]:
        return [
            ("orders driven / paid", f"{self.orders} / {self.paid}"),
            ("faults injected", str(len(self.faults_injected))),
            ("orders lost (paid, no server, no refund)", str(len(self.lost))),
            ("servers doubled", str(len(self.doubled))),
            ("wrong refunds", str(len(self.wrong_refunds))),
            ("orders not terminal at the deadline", str(len(self.not_terminal))),
            ("customers who met a definite error", str(len(self.customer_errors))),
            ("dead-lettered messages at the end", str(sum(self.dead_letters.values()))),
            ("unhandled errors in the services' logs (500s)", str(sum(self.server_errors.values()))),
            ("process kills / restarts", f"{sum(self.kills.values())} / {sum(self.restarts.values())}"),
            ("CREATED / FAILED", f"{self.created} / {self.failed}"),
            ("fulfilled by the sweeper (webhook held back)", str(self.sweeper_fulfilments)),
            ("customer retries (transient answers)", str(self.customer_retries)),
        ]


def _tokens(orders: int) -> dict[str, str]:
    secret = CommonSettings().jwt_secret.get_secret_value()
    tokens = {}
    for _ in range(orders):
        user = f"chaos-{uuid.uuid4().hex[:10]}"
        tokens[user] = mint_token(secret, sub=user, email=f"{user}@example.test", ttl_seconds=6 * 3600)
    return tokens


async def _customers(
    stack: Stack, orders: int, *, processes: int, deadline: float, spread: float
) -> list[dict[str, Any]]:
    """Run the customers in ``processes`` separate processes; their outcomes."""
    urls = {name: stack.config.url(name) for name in (*SERVICES, "stripe-fake", "panel-fake")}
    return await run_customers(
        [urls] * processes, orders, deadline=deadline, spread=spread, log_dir=stack.config.log_dir
    )


async def run_customers(
    url_sets: list[dict[str, str]], orders: int, *, deadline: float, spread: float, log_dir: Path
) -> list[dict[str, Any]]:
    """``orders`` customers split over one ``chaos.customers`` process per URL set (the same stack for each, or
    one set per replica of every service); every customer's outcome."""
    tokens = _tokens(orders)
    users = list(tokens)
    work = log_dir / "customers"
    work.mkdir(parents=True, exist_ok=True)
    running = []
    for index, urls in enumerate(url_sets):
        mine = users[index :: len(url_sets)]
        if not mine:
            continue
        spec = work / f"spec-{index}.json"
        spec.write_text(
            json.dumps(
                {
                    "urls": urls,
                    "tokens": {u: tokens[u] for u in mine},
                    "deadline": deadline,
                    "concurrency": 64,  # no queueing behind slow orders: arrivals keep their times
                    "start_within": spread,
                }
            )
        )
        result = work / f"result-{index}.json"
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "chaos.customers",
            str(spec),
            str(result),
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'scripts'}"},
        )
        running.append((proc, result))
    outcomes: list[dict[str, Any]] = []
    for proc, result in running:
        await proc.wait()
        outcomes.extend(json.loads(result.read_text()) if result.exists() else [])
    return outcomes


async def _dead_letters(config: StackConfig) -> dict[str, int]:
    """Every queue's dead-letter depth in the campaign's namespace (what ``spawnctl dlq queues`` shows)."""
    topology = Topology(config.namespace)
    connection = await dlq.connect(CommonSettings().broker_url.get_secret_value())
    try:
        return {
            spec.name: await dlq.DeadLetterQueue(connection, topology.queue_name(spec)).depth() for spec in ALL_QUEUES
        }
    finally:
        await connection.close()


async def _audit(stack: Stack, http: httpx.AsyncClient, outcomes: list[dict[str, Any]], report: Report) -> None:
    panel = (await http.get(f"{stack.config.url('panel-fake')}/_fake/servers")).json()["servers"]
    servers: dict[str, int] = {}
    for server in panel:
        if server.get("external_id"):
            servers[server["external_id"]] = servers.get(server["external_id"], 0) + 1
    refunds = (await http.get(f"{stack.config.url('stripe-fake')}/_fake/refunds")).json()["data"]
    refunded: dict[str, int] = {}
    for refund in refunds:
        order = (refund.get("metadata") or {}).get("serverOrderId")
        if order:
            refunded[order] = refunded.get(order, 0) + 1
    for outcome in outcomes:
        order = outcome.get("order_id")
        report.customer_retries += int(outcome.get("retries", 0))
        if outcome.get("error"):
            report.customer_errors.append(f"{outcome['user_id']}: {outcome['error']}")
        if not order:
            continue
        if outcome.get("paid"):
            report.paid += 1
        status = outcome.get("status")
        report.created += status == "CREATED"
        report.failed += status == "FAILED"
        if status not in ("CREATED", "FAILED"):
            report.not_terminal.append(f"{order}: {status}/{outcome.get('phase')}")
        if servers.get(order, 0) > 1:
            report.doubled.append(f"{order}: {servers[order]} servers")
        if outcome.get("paid") and servers.get(order, 0) == 0 and not refunded.get(order):
            report.lost.append(order)
        if refunded.get(order, 0) > 1 or (refunded.get(order) and servers.get(order)):
            report.wrong_refunds.append(f"{order}: {refunded[order]} refund(s), {servers.get(order, 0)} server(s)")
    payments = await asyncpg.connect(asyncpg_dsn(stack.config.database_url("payment-service")))
    try:
        report.sweeper_fulfilments = int(
            await payments.fetchval("SELECT count(*) FROM payments WHERE fulfilled_via = 'sweeper'")
        )
    finally:
        await payments.close()
    report.dead_letters = await _dead_letters(stack.config)
    for name in SERVICES:
        log = stack.log_path(name)
        text = log.read_text(errors="replace") if log.exists() else ""
        count = text.count('"event": "unhandled error"') + text.count('"event": "Exception in ASGI application')
        if count:
            report.server_errors[name] = count


async def _inject(plan: list[Fault], started: float, injected: list[str]) -> None:
    """Each fault at its time, overlapping the ones still running (an outage lasts while a process dies)."""

    async def one(fault: Fault) -> None:
        await asyncio.sleep(max(0.0, started + fault.at - time.monotonic()))
        print(f"  t+{time.monotonic() - started:5.0f}s  {fault.name}", flush=True)
        injected.append(fault.name)
        await fault.run()

    await asyncio.gather(*(one(fault) for fault in plan))


async def campaign(*, orders: int, quick: bool, deadline_seconds: float, keep: bool = False) -> Report:
    reason = can_control_infrastructure()
    infrastructure = reason is None
    if not infrastructure:
        print(f"  (RabbitMQ and PostgreSQL faults skipped: {reason})")
    stack = Stack(chaos_config())
    stack.start(timeout=180)
    supervisor = Supervisor(stack)
    watching = asyncio.create_task(supervisor.run())
    started = time.monotonic()
    try:
        async with httpx.AsyncClient(timeout=30) as http:
            faults = Faults(stack, http, kills={})
            plan = schedule(faults, quick=quick, infrastructure=infrastructure)
            report = Report(orders=orders, faults_injected=[], infrastructure_faults=infrastructure)
            spread = 20.0 if quick else 240.0
            last_fault = max((f.at for f in plan), default=0.0) + (65 if not quick else 20)
            deadline = time.time() + max(spread, last_fault) + deadline_seconds
            injecting = asyncio.create_task(_inject(plan, started, report.faults_injected))
            outcomes = await _customers(stack, orders, processes=4, deadline=deadline, spread=spread)
            await injecting
            await _wait_ready(stack, http)
            report.kills = faults.kills
            await _audit(stack, http, outcomes, report)
            report.restarts = dict(supervisor.restarts)
            report.seconds = round(time.monotonic() - started, 1)
            return report
    finally:
        supervisor.stop()
        await watching
        stack.stop()
        if not keep:
            drop_databases(stack.config)
            drop_namespace(stack.config)


async def _wait_ready(stack: Stack, http: httpx.AsyncClient, timeout: float = 120.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            answers = [await http.get(stack.config.ready_url(name)) for name in SERVICES]
            if all(a.status_code == 200 for a in answers):
                return
        except httpx.HTTPError:
            pass
        await asyncio.sleep(1.0)


def write_results(report: Report, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**asdict(report), "clean": report.clean, "figures": report.figures()}, indent=2) + "\n")


def table(report: Report) -> str:
    width = max(len(name) for name, _ in report.figures())
    lines = [f"| {'figure':<{width}} | value |", f"|{'-' * (width + 2)}|-------|"]
    lines += [f"| {name:<{width}} | {value} |" for name, value in report.figures()]
    return "\n".join(lines)
