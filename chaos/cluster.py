"""``make cluster``: the system against a three-node RabbitMQ cluster, failed over node by node, for real.

Three nodes of the machine's ``rabbitmq-server`` are started and joined (``scripts/rabbit_cluster.py``), HAProxy
balances them behind one address (as a Kubernetes Service would) and the system runs against that address
with two processes of every service (the stack's own and a ``replica()``). Then:

1. **One node down.** A burst of paid orders comes from customer processes (half of them using the replicas'
   HTTP ports); mid-burst, the node that leads ``provisioner.order-paid`` is stopped by name. Measured: how
   long until every work queue has a leader on a surviving node and all its consumers back, until every
   process is ready again and until the next server is created. The node is brought back and the burst must
   end with every order CREATED and one server each.
2. **Two nodes down (the minority).** Orders are placed and checkouts opened, then two nodes are stopped
   (the order-paid leader and one more). While one node is left: publishing with confirms, through HAProxy
   and straight to the survivor, must never be confirmed, every process's readiness must say so, and the
   orders placed and paid meanwhile must wait in the outboxes (nothing reported published that the broker
   did not take). One node comes back (a majority again): everything must complete, one server each.

The figures go to ``bench/results/cluster.json``. Exit 0 when nothing was lost, doubled or acknowledged
without a majority, the majority alone completed every order and no outbox row had an attempt counted
against it (a broker outage or refusal is not the row's fault). It needs haproxy (installed here when missing
and we are root) and a free 5701-5703; it never touches the machine's own broker on 5672.

    make cluster
    make cluster ARGS="--orders 30 --minority-orders 6"
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aio_pika
import asyncpg
import httpx
from rabbit_cluster import RabbitCluster, ensure_haproxy, parse_queues

from devstack import SERVICES, Stack, StackConfig, drop_databases, replica
from spawnctl.system import ALL_QUEUES
from spawnpoint_kit.db import asyncpg_dsn

from .campaign import _tokens, chaos_config, run_customers

ROOT = Path(__file__).resolve().parents[1]
LOGS = ROOT / ".run" / "cluster-logs"
RESULTS = ROOT / "bench" / "results" / "cluster.json"
ORDER_PAID = "provisioner.order-paid"
ORDER_BODY = {"game_id": "minecraft-paper", "plan_id": "starter", "server_name": "Cluster world", "settings": {}}


@dataclass
class Failover:
    """Phase 1: one node stopped mid-burst."""

    orders: int = 0
    paid: int = 0
    created: int = 0
    node_stopped: str = ""
    leader_after: str = ""
    stop_seconds: float = 0.0
    """The graceful stop itself (``rabbitmqctl stop`` until the process ended)."""
    leaders_moved_seconds: float | None = None
    """From the stop command until every work queue had a leader on a surviving node."""
    consumers_moved_seconds: float | None = None
    """From the stop command until every work queue had a surviving leader *and* all its consumers again."""
    ready_again_seconds: float | None = None
    """From the stop command until all eight processes answered ``/readyz`` 200 again."""
    first_server_after_stop_seconds: float | None = None
    node_back_seconds: float = 0.0
    probe_confirmed: int = 0
    """Messages a publisher (through HAProxy, reconnecting) had confirmed around the stop, to a quorum queue the
    stopped node led."""
    probe_unconfirmed: int = 0
    probe_missing: int = 0
    """Confirmed probe messages not found in the queue afterwards: must be 0."""
    lost: list[str] = field(default_factory=list)
    doubled: list[str] = field(default_factory=list)
    not_created: list[str] = field(default_factory=list)
    customer_errors: list[str] = field(default_factory=list)
    customer_retries: int = 0


@dataclass
class Minority:
    """Phase 2: two nodes stopped, one left."""

    orders: int = 0
    classic_queues_home: str = ""
    """The node the classic dead-letter and delay queues live on (not replicated)."""
    nodes_stopped: list[str] = field(default_factory=list)
    survivor: str = ""
    probe_publishes: int = 0
    probe_confirmed: int = 0
    """Publishes the minority confirmed: must be 0."""
    probe_answers: list[str] = field(default_factory=list)
    readiness: dict[str, str] = field(default_factory=dict)
    """Each process's readiness answer while in the minority."""
    placed_during: int = 0
    paid_during: int = 0
    outbox_unpublished_during: dict[str, int] = field(default_factory=dict)
    published_during: dict[str, int] = field(default_factory=dict)
    """Outbox rows marked published while in the minority (confirmed without a majority): must be 0."""
    held_seconds: float = 0.0
    majority_back_to_all_created_seconds: float | None = None
    all_three_back_to_all_created_seconds: float | None = None
    """Only measured when the majority alone did not complete them."""
    created: int = 0
    lost: list[str] = field(default_factory=list)
    doubled: list[str] = field(default_factory=list)
    not_created: list[str] = field(default_factory=list)
    probe_messages_after: int = 0
    """Messages found in the probe queue once the majority was back (every confirmed one must be there)."""
    most_attempts: dict[str, int] = field(default_factory=dict)
    """Per service, the most publish attempts counted against one outbox row (the row's own failures; a row is
    parked at 50). A broker outage or refusal must count none: 0 expected."""


@dataclass
class ClusterReport:
    nodes: list[str]
    processes: int
    partition_handling: str = "pause_minority"
    failover: Failover = field(default_factory=Failover)
    minority: Minority = field(default_factory=Minority)
    process_deaths: dict[str, int] = field(default_factory=dict)
    server_errors: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def clean(self) -> bool:
        f, m = self.failover, self.minority
        return not (
            f.lost
            or f.doubled
            or f.not_created
            or f.customer_errors
            or f.consumers_moved_seconds is None
            or f.probe_missing
            or m.lost
            or m.doubled
            or m.not_created
            or m.majority_back_to_all_created_seconds is None
            or m.probe_confirmed
            or any(m.published_during.values())
            or m.probe_messages_after < m.probe_confirmed
            or any(m.most_attempts.values())
            or any(self.process_deaths.values())
            or any(self.server_errors.values())
        )

    def figures(self) -> list[tuple[str, str]]:
        f, m = self.failover, self.minority

        def sec(value: float | None) -> str:
            return "never" if value is None else f"{value:.1f} s"

        return [
            ("RabbitMQ nodes / service processes", f"{len(self.nodes)} / {self.processes}"),
            ("cluster_partition_handling", self.partition_handling),
            ("phase 1: orders driven / paid / CREATED", f"{f.orders} / {f.paid} / {f.created}"),
            ("node stopped mid-burst (led order-paid)", f.node_stopped),
            ("order-paid leader afterwards", f.leader_after),
            ("leaders on surviving nodes after the stop", sec(f.leaders_moved_seconds)),
            ("consumers moved (every queue, all consumers back)", sec(f.consumers_moved_seconds)),
            ("all processes ready again", sec(f.ready_again_seconds)),
            ("first server created after the stop", sec(f.first_server_after_stop_seconds)),
            ("probe publishes confirmed around the stop / missing after", f"{f.probe_confirmed} / {f.probe_missing}"),
            (
                "phase 1: orders lost / doubled / not CREATED",
                f"{len(f.lost)} / {len(f.doubled)} / {len(f.not_created)}",
            ),
            ("phase 2: nodes stopped / survivor", f"{', '.join(m.nodes_stopped)} / {m.survivor}"),
            ("phase 2: the classic DLQs' and delay queues' node (back last)", m.classic_queues_home),
            ("minority: publishes confirmed / tried", f"{m.probe_confirmed} / {m.probe_publishes}"),
            ("minority: outbox rows published without a majority", str(sum(m.published_during.values()))),
            ("minority: orders placed / paid meanwhile", f"{m.placed_during} / {m.paid_during}"),
            (
                "minority: processes not ready",
                f"{sum(1 for v in m.readiness.values() if v != '200')} / {len(m.readiness)}",
            ),
            ("majority back -> every order CREATED", sec(m.majority_back_to_all_created_seconds)),
            *(
                [("all three back -> every order CREATED", sec(m.all_three_back_to_all_created_seconds))]
                if m.majority_back_to_all_created_seconds is None
                else []
            ),
            (
                "phase 2: orders / CREATED / lost / doubled",
                f"{m.orders} / {m.created} / {len(m.lost)} / {len(m.doubled)}",
            ),
            ("phase 2: most attempts counted against one outbox row", str(max(m.most_attempts.values(), default=0))),
            ("processes that died", str(sum(self.process_deaths.values()))),
            ("unhandled errors in the services' logs", str(sum(self.server_errors.values()))),
        ]


# helpers -----------------------------------------------------------------------------------------


def cluster_config(broker_url: str) -> StackConfig:
    """The chaos campaign's production-like settings, against the cluster's address."""
    config = chaos_config()
    run_id = config.namespace.removeprefix("chaos").rstrip(".")
    config.log_dir = LOGS / run_id
    config.database_prefix = f"sp_cluster_{run_id}"
    config.namespace = f"cluster{run_id}."
    config.extra_env = {**config.extra_env, "BROKER_URL": broker_url, "DB_POOL_SIZE": "3"}
    return config


def work_queues(namespace: str) -> list[str]:
    return [f"{namespace}{spec.name}" for spec in ALL_QUEUES]


async def _ctl_queues(cluster: RabbitCluster, via: str) -> dict[str, dict[str, Any]]:
    return await asyncio.to_thread(cluster.queues, via)


async def _ready(http: httpx.AsyncClient, urls: list[str]) -> dict[str, str]:
    """Each process's readiness: ``200`` or the status and the failing checks it names."""
    answers: dict[str, str] = {}
    for url in urls:
        try:
            response = await http.get(f"{url}/readyz", timeout=5)
            answers[url] = "200" if response.status_code == 200 else f"{response.status_code} {response.text[:160]}"
        except httpx.HTTPError as exc:
            answers[url] = f"unreachable ({type(exc).__name__})"
    return answers


async def _servers(http: httpx.AsyncClient, config: StackConfig) -> dict[str, int]:
    panel = (await http.get(f"{config.url('panel-fake')}/_fake/servers")).json()["servers"]
    counts: dict[str, int] = {}
    for server in panel:
        if server.get("external_id"):
            counts[server["external_id"]] = counts.get(server["external_id"], 0) + 1
    return counts


async def _outbox(config: StackConfig) -> dict[str, tuple[int, int]]:
    """Per service: (rows not yet published, rows published) in its outbox."""
    found: dict[str, tuple[int, int]] = {}
    for name in SERVICES:
        conn = await asyncpg.connect(asyncpg_dsn(config.database_url(name)))
        try:
            row = await conn.fetchrow(
                "SELECT count(*) FILTER (WHERE published_at IS NULL), count(*) FILTER (WHERE published_at IS NOT NULL)"
                " FROM outbox"
            )
            found[name] = (int(row[0]), int(row[1])) if row else (0, 0)
        finally:
            await conn.close()
    return found


async def _most_attempts(config: StackConfig) -> dict[str, int]:
    """Per service: the most attempts counted against one outbox row."""
    found: dict[str, int] = {}
    for name in SERVICES:
        conn = await asyncpg.connect(asyncpg_dsn(config.database_url(name)))
        try:
            found[name] = int(await conn.fetchval("SELECT coalesce(max(attempts), 0) FROM outbox") or 0)
        finally:
            await conn.close()
    return found


async def _probe_publish(url: str, queue: str, *, timeout: float = 5.0) -> str:
    """Publish one persistent message with confirms; ``confirmed`` or what happened instead."""
    try:
        connection = await asyncio.wait_for(aio_pika.connect(url, timeout=timeout), timeout + 1)
    except Exception as exc:
        return f"connection refused ({type(exc).__name__})"
    try:
        channel = await connection.channel(publisher_confirms=True)
        message = aio_pika.Message(uuid.uuid4().bytes, delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
        try:
            await asyncio.wait_for(
                channel.default_exchange.publish(message, routing_key=queue, mandatory=True), timeout
            )
        except TimeoutError:
            return "no confirm (timed out)"
        except Exception as exc:
            return f"refused ({type(exc).__name__}: {str(exc)[:80]})"
        return "confirmed"
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(connection.close(), 5)


class ProbePublisher:
    """Publishes numbered persistent messages with confirms, one at a time, until stopped, reconnecting
    after a failure, as the relay does. Keeps the numbers the broker confirmed. The first connection goes to
    ``first_url`` (the node about to be stopped, so that publishes are in flight when it goes), every later
    one to ``url`` (HAProxy)."""

    def __init__(self, url: str, queue: str, *, first_url: str | None = None) -> None:
        self.url = url
        self.first_url = first_url or url
        self.queue = queue
        self.confirmed: list[int] = []
        self.unconfirmed = 0
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        number = 0
        url = self.first_url
        while not self._stop.is_set():
            try:
                connection = await aio_pika.connect(url, timeout=5)
                url = self.url
            except Exception:
                await asyncio.sleep(0.2)
                continue
            try:
                channel = await connection.channel(publisher_confirms=True)
                while not self._stop.is_set():
                    number += 1
                    message = aio_pika.Message(str(number).encode(), delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
                    try:
                        await asyncio.wait_for(
                            channel.default_exchange.publish(message, routing_key=self.queue, mandatory=True), 5
                        )
                    except Exception:
                        self.unconfirmed += 1
                        break
                    self.confirmed.append(number)
                    await asyncio.sleep(0.01)
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(connection.close(), 5)


async def _drain(url: str, queue: str) -> set[int]:
    """Every message in ``queue`` (taken, acked): their numbers."""
    found: set[int] = set()
    connection = await aio_pika.connect(url, timeout=10)
    try:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=500)
        declared = await channel.declare_queue(queue, passive=True)
        while True:
            message = await declared.get(no_ack=True, fail=False, timeout=10)
            if message is None:
                return found
            found.add(int(message.body))
    finally:
        await connection.close()


async def _declare_probe_queue(url: str, queue: str) -> None:
    connection = await aio_pika.connect(url, timeout=10)
    try:
        channel = await connection.channel()
        await channel.declare_queue(queue, durable=True, arguments={"x-queue-type": "quorum"})
    finally:
        await connection.close()


async def _probe_depth(url: str, queue: str) -> int:
    connection = await aio_pika.connect(url, timeout=10)
    try:
        channel = await connection.channel()
        declared = await channel.declare_queue(queue, passive=True)
        return int(declared.declaration_result.message_count or 0)
    finally:
        await connection.close()


async def _until(what: str, probe: Any, *, timeout: float, interval: float = 0.5) -> float | None:
    """Poll ``probe`` until true; the seconds it took, or None at the deadline."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        with contextlib.suppress(Exception):
            if await probe():
                return time.monotonic() - started
        await asyncio.sleep(interval)
    print(f"  {what}: not within {timeout:.0f} s", flush=True)
    return None


# the campaign ------------------------------------------------------------------------------------


class Run:
    def __init__(self, cluster: RabbitCluster, stack: Stack, replicas: dict[str, str], http: httpx.AsyncClient) -> None:
        self.cluster = cluster
        self.stack = stack
        self.config = stack.config
        self.replicas = replicas
        self.http = http
        self.queues = work_queues(self.config.namespace)
        self.process_urls = [self.config.url(n) for n in SERVICES] + [replicas[n] for n in SERVICES]
        self.started = time.monotonic()

    def log(self, text: str) -> None:
        print(f"  t+{time.monotonic() - self.started:5.0f}s  {text}", flush=True)

    def survivors(self, *down: str) -> list[str]:
        return [n.name for n in self.cluster.nodes if n.name not in down]

    async def leader(self, via: str) -> str:
        return str((await _ctl_queues(self.cluster, via))[self.queues_by_name(ORDER_PAID)].get("leader") or "")

    def queues_by_name(self, base: str) -> str:
        return f"{self.config.namespace}{base}"

    async def consumer_baseline(self, via: str) -> dict[str, int]:
        rows = await _ctl_queues(self.cluster, via)
        return {q: int(rows[q].get("consumers") or 0) for q in self.queues}

    # phase 1 ---------------------------------------------------------------------------------------

    async def failover(self, report: Failover, orders: int, spread: float) -> None:
        first = self.cluster.nodes[0].name

        async def two_each() -> bool:
            counts = await self.consumer_baseline(first)
            return all(n >= 2 for n in counts.values() if n)

        # Both processes of each service consume before anything is measured.
        await _until("two consumers on every work queue", two_each, timeout=60)
        baseline = await self.consumer_baseline(first)
        short = {q.removeprefix(self.config.namespace): n for q, n in baseline.items()}
        self.log(f"consumers per work queue: {short}")
        report.orders = orders
        url_sets = [
            {n: self.config.url(n) for n in (*SERVICES, "stripe-fake", "panel-fake")},
            {
                **{n: self.replicas[n] for n in SERVICES},
                **{n: self.config.url(n) for n in ("stripe-fake", "panel-fake")},
            },
        ]
        deadline = time.time() + spread + 300
        customers = asyncio.create_task(
            run_customers(url_sets, orders, deadline=deadline, spread=spread, log_dir=self.config.log_dir)
        )
        # Mid-burst: once a fifth of the servers exist (the pipeline is flowing through the leader), or a
        # third of the arrivals' spread has passed, whichever comes first.
        burst_started = time.monotonic()

        async def mid_burst() -> bool:
            return time.monotonic() - burst_started > spread / 3 or await self._servers_at_least(max(1, orders // 5))

        await _until("mid-burst", mid_burst, timeout=spread + 120)
        victim = await self.leader(first)
        report.node_stopped = victim
        survivors = self.survivors(victim)
        # A probe queue the victim leads (declared on it: client-local leader), fed through HAProxy.
        probe_queue = f"{self.config.namespace}cluster-failover-probe"
        await _declare_probe_queue(self.cluster.url(victim), probe_queue)
        probe = ProbePublisher(self.cluster.url(), probe_queue, first_url=self.cluster.url(victim))
        probing = asyncio.create_task(probe.run())
        await asyncio.sleep(1.0)  # the probe is publishing when the node goes
        servers_before = sum((await _servers(self.http, self.config)).values())
        self.log(f"stopping {victim} (leads {ORDER_PAID}); {servers_before} servers so far")
        stop_started = time.monotonic()
        stop_task = asyncio.create_task(asyncio.to_thread(self.cluster.stop_node, victim))

        async def moved(all_consumers: bool) -> bool:
            if not stop_task.done():
                return False
            rows = await _ctl_queues(self.cluster, survivors[0])
            for queue in self.queues:
                row = rows[queue]
                if row.get("leader") not in survivors:
                    return False
                if all_consumers and int(row.get("consumers") or 0) < baseline[queue]:
                    return False
            return True

        async def first_server() -> bool:
            # Counted once the node is down: servers made while it was still stopping prove nothing.
            return stop_task.done() and sum((await _servers(self.http, self.config)).values()) > servers_at_stop

        async def all_ready() -> bool:
            if not stop_task.done():
                return False
            return all(v == "200" for v in (await _ready(self.http, self.process_urls)).values())

        servers_at_stop = servers_before

        async def note_down() -> None:
            nonlocal servers_at_stop
            await asyncio.wait({stop_task})
            servers_at_stop = sum((await _servers(self.http, self.config)).values())
            self.log(f"{victim} is down ({time.monotonic() - stop_started:.1f} s after the stop command)")

        await note_down()

        async def timed(probe: Any, what: str, timeout: float = 120.0) -> float | None:
            took = await _until(what, probe, timeout=timeout, interval=0.25)
            return None if took is None else time.monotonic() - stop_started

        leaders, consumers, ready, server = await asyncio.gather(
            timed(lambda: moved(False), "leaders on survivors"),
            timed(lambda: moved(True), "consumers back"),
            timed(all_ready, "every process ready"),
            # None when every order was fulfilled before the node was down (nothing left to create).
            timed(first_server, "a server created after the stop", 60.0 if servers_at_stop < orders else 0.0),
        )
        await stop_task
        await asyncio.sleep(2.0)
        probe.stop()
        await probing
        report.stop_seconds = round(self.cluster.stop_seconds.get(victim, 0.0), 1)
        report.leaders_moved_seconds = None if leaders is None else round(leaders, 1)
        report.consumers_moved_seconds = None if consumers is None else round(consumers, 1)
        report.ready_again_seconds = None if ready is None else round(ready, 1)
        report.first_server_after_stop_seconds = None if server is None else round(server, 1)
        report.leader_after = await self.leader(survivors[0])
        self.log(
            f"{victim} down; leaders moved {report.leaders_moved_seconds} s,"
            f" consumers {report.consumers_moved_seconds} s,"
            f" ready {report.ready_again_seconds} s, next server {report.first_server_after_stop_seconds} s;"
            f" order-paid now led by {report.leader_after}"
        )
        back = time.monotonic()
        await asyncio.to_thread(self.cluster.start_node, victim)
        report.node_back_seconds = round(time.monotonic() - back, 1)
        self.log(f"{victim} back ({report.node_back_seconds} s)")
        found = await _drain(self.cluster.url(), probe_queue)
        report.probe_confirmed, report.probe_unconfirmed = len(probe.confirmed), probe.unconfirmed
        report.probe_missing = len(set(probe.confirmed) - found)
        self.log(
            f"probe: {report.probe_confirmed} confirmed, {report.probe_unconfirmed} not confirmed (connection lost),"
            f" {report.probe_missing} confirmed ones missing, {len(found)} in the queue"
        )
        outcomes = await customers
        servers = await _servers(self.http, self.config)
        for outcome in outcomes:
            order = outcome.get("order_id")
            report.customer_retries += int(outcome.get("retries", 0))
            if outcome.get("error"):
                report.customer_errors.append(f"{outcome['user_id']}: {outcome['error']}")
            if not order:
                continue
            report.paid += bool(outcome.get("paid"))
            report.created += outcome.get("status") == "CREATED"
            if outcome.get("status") != "CREATED":
                report.not_created.append(f"{order}: {outcome.get('status')}")
            if outcome.get("paid") and servers.get(order, 0) == 0:
                report.lost.append(order)
            if servers.get(order, 0) > 1:
                report.doubled.append(f"{order}: {servers[order]} servers")
        self.log(
            f"burst done: {report.created}/{orders} CREATED, {len(report.lost)} lost, {len(report.doubled)} doubled"
        )

    async def _servers_at_least(self, count: int) -> bool:
        return sum((await _servers(self.http, self.config)).values()) >= count

    # phase 2 ---------------------------------------------------------------------------------------

    async def minority(self, report: Minority, orders: int, hold: float) -> None:
        first = self.cluster.nodes[0].name
        probe_queue = f"{self.config.namespace}cluster-probe"
        await _declare_probe_queue(self.cluster.url(), probe_queue)
        tokens = _tokens(orders)
        half = max(1, orders // 2)
        before = list(tokens.items())[:half]
        during = list(tokens.items())[half:]
        placed: dict[str, tuple[str, str]] = {}  # order id -> (token, checkout session)
        for _user, token in before:
            order = await self._place(token)
            placed[order] = (token, await self._checkout(token, order))
        self.log(f"{len(placed)} orders placed with checkouts open (not paid yet)")
        victim = await self.leader(first)
        # The second node is the one the classic queues (dead-letter and delay queues) live on, when that is
        # not the leader: the majority then comes back without it (the leader returns first).
        home = await asyncio.to_thread(self.classic_home, f"{self.queues_by_name(ORDER_PAID)}.dlq")
        others = [n for n in self.survivors(victim) if n == home] + [n for n in self.survivors(victim) if n != home]
        second, survivor = others[0], others[1]
        report.classic_queues_home = home
        report.nodes_stopped, report.survivor = [victim, second], survivor
        published_before = {name: pub for name, (_, pub) in (await _outbox(self.config)).items()}
        self.log(f"stopping {victim} and {second}; {survivor} is left alone")
        await asyncio.to_thread(self.cluster.stop_node, victim)
        await asyncio.to_thread(self.cluster.stop_node, second)
        minority_started = time.monotonic()
        # While in the minority: pay the open checkouts, place more orders, probe the broker.
        for _token, session in placed.values():
            paid = await self.http.post(
                f"{self.config.url('stripe-fake')}/_fake/sessions/{session}/pay", json={"outcome": "paid"}
            )
            report.paid_during += paid.status_code == 200
        late: dict[str, str] = {}
        for _user, token in during:
            with contextlib.suppress(httpx.HTTPError):
                late[await self._place(token)] = token
        report.placed_during = len(late)
        for url in (self.cluster.url(), self.cluster.url(survivor)):
            for _ in range(3):
                answer = await _probe_publish(url, probe_queue)
                report.probe_publishes += 1
                report.probe_confirmed += answer == "confirmed"
                report.probe_answers.append(f"{'haproxy' if url == self.cluster.url() else survivor}: {answer}")
        await asyncio.sleep(max(0.0, hold - (time.monotonic() - minority_started)))  # the outage's length
        report.readiness = {
            url.rsplit(":", 1)[1]: answer for url, answer in (await _ready(self.http, self.process_urls)).items()
        }
        outbox = await _outbox(self.config)
        report.outbox_unpublished_during = {name: pending for name, (pending, _) in outbox.items()}
        report.published_during = {name: outbox[name][1] - published_before[name] for name in SERVICES}
        report.held_seconds = round(time.monotonic() - minority_started, 1)
        self.log(
            f"minority for {report.held_seconds} s: {report.probe_confirmed}/{report.probe_publishes} publishes"
            f" confirmed, {sum(report.published_during.values())} outbox rows published, waiting:"
            f" {report.outbox_unpublished_during}; readiness {sorted({v[:3] for v in report.readiness.values()})}"
        )
        majority = time.monotonic()
        await asyncio.to_thread(self.cluster.start_node, victim)
        self.log(f"{victim} back: a majority again")
        for order, token in late.items():
            try:
                session = await self._patient_checkout(token, order)
            except TimeoutError as exc:
                report.not_created.append(f"{order}: {exc}")
                continue
            await self.http.post(
                f"{self.config.url('stripe-fake')}/_fake/sessions/{session}/pay", json={"outcome": "paid"}
            )
            placed[order] = (token, session)
        report.orders = len(placed)

        async def all_created() -> bool:
            for order, (token, _) in placed.items():
                response = await self.http.get(
                    f"{self.config.url('status-service')}/orders/{order}/status", headers=_auth(token)
                )
                if response.status_code != 200 or response.json()["status"] != "CREATED":
                    return False
            return True

        took = await _until("every minority order CREATED", all_created, timeout=240, interval=1.0)
        report.majority_back_to_all_created_seconds = None if took is None else round(time.monotonic() - majority, 1)
        everything = time.monotonic()
        await asyncio.to_thread(self.cluster.start_node, second)
        self.log(f"{second} back; all three nodes up")
        if took is None:  # not with the majority alone: does it with all three?
            took = await _until("every minority order CREATED, all three nodes up", all_created, timeout=240)
            report.all_three_back_to_all_created_seconds = (
                None if took is None else round(time.monotonic() - everything, 1)
            )
        servers = await _servers(self.http, self.config)
        for order, (token, _) in placed.items():
            response = await self.http.get(
                f"{self.config.url('status-service')}/orders/{order}/status", headers=_auth(token)
            )
            status = response.json().get("status") if response.status_code == 200 else str(response.status_code)
            report.created += status == "CREATED"
            if status != "CREATED":
                report.not_created.append(f"{order}: {status}")
            if servers.get(order, 0) == 0:
                report.lost.append(order)
            if servers.get(order, 0) > 1:
                report.doubled.append(f"{order}: {servers[order]} servers")
        report.probe_messages_after = await _probe_depth(self.cluster.url(), probe_queue)
        report.most_attempts = await _most_attempts(self.config)
        self.log(
            f"minority orders: {report.created}/{report.orders} CREATED,"
            f" probe queue holds {report.probe_messages_after}"
        )

    def classic_home(self, queue: str) -> str:
        """The node a classic queue lives on (``list_queues --local`` on each running node)."""
        for node in self.cluster.nodes:
            if self.cluster.running(node.name):
                listed = self.cluster.ctl(node.name, "list_queues", "name", "--local", "--formatter", "json")
                if queue in parse_queues(listed):
                    return node.name
        return ""

    async def _place(self, token: str) -> str:
        response = await self.http.post(
            f"{self.config.url('order-service')}/orders",
            headers={**_auth(token), "Idempotency-Key": str(uuid.uuid4())},
            json=ORDER_BODY,
        )
        response.raise_for_status()
        return str(response.json()["id"])

    async def _checkout(self, token: str, order: str) -> str:
        return await self._patient_checkout(token, order)

    async def _patient_checkout(self, token: str, order: str, timeout: float = 120.0) -> str:
        """The checkout, asked again while payment-service has not heard of the order yet (404)."""
        end = time.monotonic() + timeout
        while True:
            with contextlib.suppress(httpx.HTTPError):
                response = await self.http.post(
                    f"{self.config.url('payment-service')}/checkout-sessions",
                    headers=_auth(token),
                    json={"order_id": order},
                )
                if response.status_code in (200, 201):
                    return str(response.json()["session_id"])
            if time.monotonic() > end:
                raise TimeoutError(f"no checkout for {order} within {timeout:.0f} s")
            await asyncio.sleep(0.5)


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _server_errors(log_dir: Path) -> dict[str, int]:
    found: dict[str, int] = {}
    for log in log_dir.glob("*.log"):
        if not any(log.name.startswith(name) for name in SERVICES):
            continue
        text = log.read_text(errors="replace")
        count = text.count('"event": "unhandled error"') + text.count('"event": "Exception in ASGI application')
        if count:
            found[log.stem] = count
    return found


async def cluster_campaign(
    *,
    orders: int,
    minority_orders: int,
    spread: float,
    hold: float,
    keep: bool,
    partition_handling: str = "pause_minority",
) -> ClusterReport:
    started = time.monotonic()
    cluster = RabbitCluster(partition_handling=partition_handling)
    report = ClusterReport(
        nodes=[n.name for n in cluster.nodes], processes=2 * len(SERVICES), partition_handling=partition_handling
    )
    print(f"  starting {', '.join(report.nodes)} in {cluster.base}", flush=True)
    stack: Stack | None = None
    try:
        await asyncio.to_thread(cluster.start)
        print(f"  cluster formed; HAProxy on 127.0.0.1:{cluster.haproxy_port}", flush=True)
        config = cluster_config(cluster.url())
        stack = Stack(config)
        await asyncio.to_thread(stack.start, None, timeout=180)
        with contextlib.ExitStack() as replicas:
            urls = {name: replicas.enter_context(replica(config, name, timeout=120)) for name in SERVICES}
            async with httpx.AsyncClient(timeout=30) as http:
                run = Run(cluster, stack, urls, http)
                run.log("eight service processes ready behind HAProxy")
                await run.failover(report.failover, orders, spread)
                await run.minority(report.minority, minority_orders, hold)
            report.process_deaths = {n: 1 for n, p in stack.procs.items() if p.poll() is not None}
        report.server_errors = _server_errors(config.log_dir)
        report.seconds = round(time.monotonic() - started, 1)
        return report
    finally:
        if stack is not None:
            stack.stop()
            if not keep:
                with contextlib.suppress(Exception):
                    drop_databases(stack.config)
        await asyncio.to_thread(cluster.stop, keep=keep)


def write_results(report: ClusterReport, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {**asdict(report), "clean": report.clean, "figures": report.figures()}
    path.write_text(json.dumps(body, indent=2) + "\n")


def table(report: ClusterReport) -> str:
    width = max(len(name) for name, _ in report.figures())
    lines = [f"| {'figure':<{width}} | value |", f"|{'-' * (width + 2)}|-------|"]
    lines += [f"| {name:<{width}} | {value} |" for name, value in report.figures()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    import argparse
    import logging
    import signal

    parser = argparse.ArgumentParser(
        prog="make cluster ARGS=...", description=__doc__.splitlines()[0] if __doc__ else ""
    )
    parser.add_argument("--orders", type=int, default=60, help="paid orders in the failover burst (default 60)")
    parser.add_argument("--minority-orders", type=int, default=12, help="orders around the minority (default 12)")
    parser.add_argument("--spread", type=float, default=40.0, help="seconds the burst's arrivals spread over")
    parser.add_argument("--hold", type=float, default=30.0, help="seconds the cluster stays in the minority")
    parser.add_argument(
        "--partition-handling",
        choices=["pause_minority", "ignore"],
        default="pause_minority",
        help="the nodes' cluster_partition_handling (default pause_minority, as deploy/k8s)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the node folders and databases")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    reason = ensure_haproxy()
    if reason:
        print(f"make cluster needs haproxy: {reason}", file=sys.stderr)
        return 2

    def stop(signum: int, _: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")  # unwinds through the teardown

    signal.signal(signal.SIGTERM, stop)
    # The probes' own connections are cut on purpose; their client libraries' tracebacks are noise here.
    for name in ("aiormq", "aio_pika"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    print(
        f"cluster: 3 RabbitMQ nodes, {args.orders} orders in the failover burst,"
        f" {args.minority_orders} around the minority",
        flush=True,
    )
    report = asyncio.run(
        cluster_campaign(
            orders=args.orders,
            minority_orders=args.minority_orders,
            spread=args.spread,
            hold=args.hold,
            keep=args.keep,
            partition_handling=args.partition_handling,
        )
    )
    write_results(report, args.output)
    print(table(report))
    for title, items in (
        ("lost", report.failover.lost + report.minority.lost),
        ("doubled", report.failover.doubled + report.minority.doubled),
        ("not CREATED", report.failover.not_created + report.minority.not_created),
        ("customer errors", report.failover.customer_errors),
        ("minority probe", report.minority.probe_answers),
    ):
        for item in items[:10]:
            print(f"  {title}: {item}")
    for url, answer in report.minority.readiness.items():
        print(f"  readiness in the minority, port {url}: {answer}")
    print(f"written: {args.output}")
    return 0 if report.clean else 1


if __name__ == "__main__":
    sys.exit(main())
