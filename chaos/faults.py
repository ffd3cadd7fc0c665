"""The faults a campaign injects, each a coroutine that returns once the fault is over (and cleared).

Infrastructure faults act on this machine's RabbitMQ and PostgreSQL (``rabbitmqctl``, ``pg_ctlcluster``), so
a campaign must not share the machine with other test runs. Process faults SIGKILL one process of the
campaign's own stack; the supervisor brings it back. Panel and Stripe faults use the stand-ins' control APIs.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from devstack import Stack


@dataclass(frozen=True)
class Fault:
    name: str
    at: float
    """Seconds after the customers start."""
    run: Callable[[], Awaitable[None]]


async def _command(*args: str, timeout: float = 180.0) -> None:
    proc = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}): {out.decode()[-300:]}")


def _pg_cluster() -> str:
    return sorted(p.name for p in Path("/etc/postgresql").iterdir())[-1]


async def broker_down() -> None:
    await _command("rabbitmqctl", "stop_app")


async def broker_up() -> None:
    await _command("rabbitmqctl", "start_app")


async def database_down() -> None:
    await _command("pg_ctlcluster", "--skip-systemctl-redirect", _pg_cluster(), "main", "stop", "-m", "fast")


async def database_up() -> None:
    await _command("pg_ctlcluster", "--skip-systemctl-redirect", _pg_cluster(), "main", "start")


def can_control_infrastructure() -> str | None:
    """Why this machine's broker and database cannot be stopped and started here, or None."""
    if os.geteuid() != 0:
        return "not root: rabbitmqctl and pg_ctlcluster need it"
    if not Path("/etc/postgresql").is_dir():
        return "no local PostgreSQL cluster (/etc/postgresql)"
    return None


class Faults:
    """The catalogue of faults for one stack."""

    def __init__(self, stack: Stack, http: httpx.AsyncClient, *, kills: dict[str, int]) -> None:
        self.stack = stack
        self.http = http
        self.kills = kills
        """Process name -> how often it was SIGKILLed (for the report)."""

    def _url(self, name: str, path: str) -> str:
        return f"{self.stack.config.url(name)}{path}"

    def kill(self, name: str) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            proc = self.stack.procs.get(name)
            if proc is not None and proc.poll() is None:
                self.stack.signal(name, signal.SIGKILL)
                self.kills[name] = self.kills.get(name, 0) + 1

        return run

    def outage(
        self, down: Callable[[], Awaitable[None]], up: Callable[[], Awaitable[None]], seconds: float
    ) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            await down()
            try:
                await asyncio.sleep(seconds)
            finally:
                await up()

        return run

    def panel_fault(self, body: dict[str, object], *, hold: float = 0.0) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            (await self.http.post(self._url("panel-fake", "/_fake/faults"), json=body)).raise_for_status()
            if hold:
                await asyncio.sleep(hold)
                (await self.http.delete(self._url("panel-fake", "/_fake/faults"))).raise_for_status()

        return run

    def commit_then_hang(self, times: int = 2) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            url = self._url("panel-fake", "/_fake/nodes/1/wings")
            body = {"mode": "commit_then_hang", "times": times, "hang_seconds": 20}
            (await self.http.post(url, json=body)).raise_for_status()

        return run

    def duplicate_webhooks(self, count: int = 30) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            events = (await self.http.get(self._url("stripe-fake", "/_fake/events"))).json()["data"]
            for event in random.sample(events, min(count, len(events))):
                await self.http.post(self._url("stripe-fake", f"/_fake/events/{event['id']}/redeliver"))

        return run

    def held_webhooks(self, seconds: float) -> Callable[[], Awaitable[None]]:
        """Stripe's deliveries held back (the sweeper and the return page must do without them), then sent
        at once in reverse order (late, reordered)."""

        async def run() -> None:
            (await self.http.post(self._url("stripe-fake", "/_fake/deliveries/pause"))).raise_for_status()
            await asyncio.sleep(seconds)
            await self.http.post(self._url("stripe-fake", "/_fake/deliveries/flush"), params={"order": "reverse"})
            await self.http.post(self._url("stripe-fake", "/_fake/deliveries/resume"))

        return run


def schedule(faults: Faults, *, quick: bool, infrastructure: bool) -> list[Fault]:
    """The campaign's faults in time order. ``quick`` is the subset ``make test`` runs."""
    if quick:
        plan = [
            Fault("SIGKILL payment-service (mid-burst)", 4, faults.kill("payment-service")),
            Fault(
                "panel 503 burst",
                8,
                faults.panel_fault({"status": 503, "times": 15, "path_prefix": "/api/application/servers"}),
            ),
            Fault("SIGKILL provisioner", 12, faults.kill("provisioner")),
            Fault("webhooks held 15 s, then reordered", 14, faults.held_webhooks(15)),
            Fault("Wings commit_then_hang", 18, faults.commit_then_hang(1)),
            Fault("duplicate webhook deliveries", 32, faults.duplicate_webhooks(20)),
        ]
        if infrastructure:
            plan.append(Fault("RabbitMQ restart", 22, faults.outage(broker_down, broker_up, 1)))
        return sorted(plan, key=lambda f: f.at)
    plan = [
        Fault("SIGKILL payment-service (mid-burst)", 5, faults.kill("payment-service")),
        Fault("SIGKILL provisioner (mid-burst)", 8, faults.kill("provisioner")),
        Fault(
            "panel 503 burst",
            12,
            faults.panel_fault({"status": 503, "times": 40, "path_prefix": "/api/application/servers"}),
        ),
        Fault("SIGKILL order-service", 16, faults.kill("order-service")),
        Fault("panel 429 burst", 20, faults.panel_fault({"status": 429, "times": 30, "retry_after": 2})),
        Fault("SIGKILL status-service", 24, faults.kill("status-service")),
        Fault("webhooks held 30 s, then reordered", 26, faults.held_webhooks(30)),
        Fault("Wings commit_then_hang", 30, faults.commit_then_hang(2)),
        Fault("duplicate webhook deliveries", 40, faults.duplicate_webhooks(60)),
        Fault("panel down 50 s (past the in-process retries)", 62, faults.panel_fault({"down": True}, hold=50)),
        Fault("SIGKILL payment-service", 70, faults.kill("payment-service")),
        Fault("SIGKILL provisioner", 80, faults.kill("provisioner")),
    ]
    if infrastructure:
        plan += [
            Fault("RabbitMQ restart", 45, faults.outage(broker_down, broker_up, 1)),
            Fault("PostgreSQL restart", 120, faults.outage(database_down, database_up, 1)),
            Fault("PostgreSQL down 60 s", 140, faults.outage(database_down, database_up, 60)),
            Fault("RabbitMQ down 60 s", 220, faults.outage(broker_down, broker_up, 60)),
        ]
    return sorted(plan, key=lambda f: f.at)
