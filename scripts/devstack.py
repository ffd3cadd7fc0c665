"""Starts the whole Spawnpoint system on one machine: four services and the two stand-ins.

Used by ``make run`` (foreground, Ctrl-C stops everything), ``make up`` / ``make down`` (background; ``up``
returns when every part answers its readiness check) and by the integration tests, which start their own
stack on free ports with their own databases and queue namespace, as separate processes.

Only the standard library and httpx at import time: it must run before anything else is known to work
(the broker and database helpers import the kit when they are called).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from setup_infra import pg_server_url

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / ".venv" / "bin"
RUN_DIR = ROOT / ".run"

DEFAULT_PORTS = {
    "order-service": 8001,
    "payment-service": 8002,
    "provisioner": 8003,
    "status-service": 8004,
    "stripe-fake": 12111,
    "panel-fake": 8081,
    "notification-service": 8005,
    "mail-fake": 8025,
    "mail-fake-smtp": 1025,
    "storefront": 3000,
}
SERVICES = ("order-service", "payment-service", "provisioner", "status-service")
"""The four services of the order pipeline; every integration stack runs them."""
STAND_INS = ("stripe-fake", "panel-fake")
EXTRAS = ("mail-fake", "notification-service", "storefront")
"""Programs ``make run`` / ``make up`` add around the pipeline: the development SMTP server, the notification
service that e-mails customers, and the reference storefront. Test stacks start them only when asked."""
PROCESSES = (*STAND_INS, *SERVICES, *EXTRAS)
WEBHOOK_SECRET = "whsec_spawnpoint_dev"
PANEL_KEY = "ptla_spawnpointdevkey0000000000000000000000000000"
PELICAN_KEY = "papp_spawnpointdevkey0000000000000000000000000000"


def free_port() -> int:
    """A free port below the kernel's ephemeral range (32768 and up), so that an outgoing connection made
    meanwhile by another process cannot take it before our server binds it."""
    for _ in range(200):
        port = random.randrange(20000, 32000)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 20000-32000")


def port_is_free(port: int) -> bool:
    """Nothing listens on 127.0.0.1:``port`` (and we may bind it)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class PortTaken(RuntimeError):
    """A port the stack needs is in use by another process."""

    def __init__(self, taken: list[tuple[str, int]]) -> None:
        listed = ", ".join(f"{port} ({name})" for name, port in taken)
        super().__init__(
            f"port {listed} already in use by another process; stop it (`make down`, or see `ss -ltnp`) and retry"
        )
        self.taken = taken


@dataclass
class StackConfig:
    """Everything that differs between a developer's stack and a test's stack."""

    ports: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_PORTS))
    database_prefix: str = "spawnpoint"
    namespace: str = ""
    log_dir: Path = RUN_DIR / "logs"
    log_level: str = "INFO"
    panel_flavor: str = "pterodactyl"
    extra_env: dict[str, str] = field(default_factory=dict)
    per_process_env: dict[str, dict[str, str]] = field(default_factory=dict)
    panel_args: list[str] = field(default_factory=list)
    """Extra panel-fake flags (for example ``--install-seconds 1``)."""

    @classmethod
    def for_tests(cls, run_id: str, log_dir: Path, **overrides: object) -> StackConfig:
        config = cls(
            ports={name: free_port() for name in DEFAULT_PORTS},
            database_prefix=f"sp_test_{run_id}",
            namespace=f"t{run_id}.",
            log_dir=log_dir,
            # Small pools: several test stacks share one PostgreSQL (max_connections is 100 by default).
            extra_env={"DB_POOL_SIZE": "4"},
        )
        for key, value in overrides.items():
            setattr(config, key, value)
        return config

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def database_url(self, name: str) -> str:
        suffix = {
            "order-service": "orders",
            "payment-service": "payments",
            "provisioner": "provisioner",
            "status-service": "status",
            "notification-service": "notifications",
        }[name]
        return f"{pg_server_url()}/{self.database_prefix}_{suffix}"

    def broker_url(self) -> str:
        """The broker URL (with its vhost) from the environment: ``.run/env``'s dedicated user and vhost under
        make and pytest (scripts/setup_infra.py), else the kit's default."""
        from spawnpoint_kit.settings import CommonSettings

        return os.environ.get("BROKER_URL") or CommonSettings().broker_url.get_secret_value()

    def panel_key(self) -> str:
        return PELICAN_KEY if self.panel_flavor == "pelican" else PANEL_KEY

    def common_env(self) -> dict[str, str]:
        env = {
            "SPAWNPOINT_NAMESPACE": self.namespace,
            "BROKER_URL": self.broker_url(),
            "LOG_LEVEL": self.log_level,
            "ORDER_DB_URL": self.database_url("order-service"),
            "PAYMENT_DB_URL": self.database_url("payment-service"),
            "PROVISIONER_DB_URL": self.database_url("provisioner"),
            "STATUS_DB_URL": self.database_url("status-service"),
            "NOTIFICATION_DB_URL": self.database_url("notification-service"),
            "ORDER_SERVICE_URL": self.url("order-service"),
            "PAYMENT_SERVICE_URL": self.url("payment-service"),
            "STATUS_SERVICE_URL": self.url("status-service"),
            "PROVISIONER_URL": self.url("provisioner"),
            "STRIPE_API_BASE": self.url("stripe-fake"),
            "STRIPE_WEBHOOK_SECRETS": WEBHOOK_SECRET,
            "PANEL_URL": self.url("panel-fake"),
            "PANEL_FLAVOR": self.panel_flavor,
            "PANEL_API_KEY": self.panel_key(),
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(self.ports["mail-fake-smtp"]),
            "STRIPE_JS_URL": f"{self.url('stripe-fake')}/v3/",
        }
        env.update(self.extra_env)
        return env

    def command(self, name: str) -> list[str]:
        port = str(self.ports[name])
        if name in SERVICES or name == "notification-service":
            return [str(BIN / name), "serve", "--port", port]
        if name == "mail-fake":
            return [str(BIN / "mail-fake"), "--port", port, "--smtp-port", str(self.ports["mail-fake-smtp"])]
        if name == "storefront":
            return [str(BIN / "storefront"), "--port", port]
        if name == "stripe-fake":
            return [
                str(BIN / "stripe-fake"),
                "--port",
                port,
                "--webhook-url",
                f"{self.url('payment-service')}/webhooks/stripe",
                "--webhook-secret",
                WEBHOOK_SECRET,
            ]
        return [
            str(BIN / "panel-fake"),
            "--port",
            port,
            "--flavor",
            self.panel_flavor,
            "--app-key",
            self.panel_key(),
            *self.panel_args,
        ]

    def env_for(self, name: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.common_env())
        env.update(self.per_process_env.get(name, {}))
        return env

    def ready_url(self, name: str) -> str:
        if name in SERVICES or name in ("notification-service", "storefront"):
            return f"{self.url(name)}/readyz"
        return f"{self.url(name)}/_fake/health"


class Stack:
    """The processes of one running system."""

    ORDER = (*STAND_INS, "status-service", "order-service", "payment-service", "provisioner")
    """What a test stack starts by default: the pipeline and its two stand-ins."""
    EVERYTHING = ("mail-fake", *ORDER, "notification-service", "storefront")
    """What ``make run`` / ``make up`` start."""

    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, names: tuple[str, ...] | None = None, *, timeout: float = 90.0) -> None:
        """Start the processes and return when each answers its readiness check. Refuses (``PortTaken``)
        when a port is already in use: another process would answer the readiness check in our place."""
        self.config.log_dir.mkdir(parents=True, exist_ok=True)
        chosen = names or self.ORDER
        taken = [(name, self.config.ports[name]) for name in chosen if not port_is_free(self.config.ports[name])]
        if taken:
            raise PortTaken(taken)
        declare_topology(self.config)
        for name in chosen:
            self._spawn(name)
        self.wait_ready(chosen, timeout=timeout)

    def _spawn(self, name: str) -> None:
        log = (self.config.log_dir / f"{name}.log").open("ab")
        self.procs[name] = subprocess.Popen(  # noqa: S603 - our own binaries
            self.config.command(name),
            env=self.config.env_for(name),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            start_new_session=True,
        )

    def wait_ready(self, names: tuple[str, ...], *, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        pending = list(names)
        with httpx.Client(timeout=2.0) as client:
            while pending:
                name = pending[0]
                proc = self.procs.get(name)
                if proc is not None and proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with {proc.returncode}; see {self.log_path(name)}")
                try:
                    if client.get(self.config.ready_url(name)).status_code == 200:
                        if proc is not None and proc.poll() is not None:  # answered by someone else
                            raise RuntimeError(f"{name} exited with {proc.returncode}; see {self.log_path(name)}")
                        pending.pop(0)
                        continue
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{name} not ready after {timeout:.0f}s; see {self.log_path(name)}")
                time.sleep(0.2)

    def log_path(self, name: str) -> Path:
        return self.config.log_dir / f"{name}.log"

    def signal(self, name: str, sig: int) -> None:
        proc = self.procs[name]
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)

    def kill(self, name: str) -> None:
        """SIGKILL, as a crash would."""
        self.signal(name, signal.SIGKILL)
        self.procs[name].wait(timeout=10)

    def restart(self, name: str, *, timeout: float = 90.0) -> None:
        self._spawn(name)
        self.wait_ready((name,), timeout=timeout)

    def respawn(self, name: str) -> None:
        """Start ``name`` again without waiting for it (an orchestrator's restart: readiness follows)."""
        self._spawn(name)

    def stop(self, *, timeout: float = 20.0) -> None:
        for name in reversed(list(self.procs)):
            proc = self.procs[name]
            if proc.poll() is None:
                self.signal(name, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for name, proc in self.procs.items():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.signal(name, signal.SIGKILL)
                proc.wait(timeout=5)

    @contextmanager
    def running(self) -> Iterator[Stack]:
        try:
            self.start()
            yield self
        finally:
            self.stop()


@contextmanager
def replica(
    config: StackConfig, name: str, *, env: Mapping[str, str] | None = None, timeout: float = 60.0
) -> Iterator[str]:
    """Another process of service ``name`` on the same databases and queues (a second replica, as production
    would run); yields its base URL and stops it afterwards."""
    port = free_port()
    log = (config.log_dir / f"{name}-replica-{port}.log").open("ab")
    proc = subprocess.Popen(  # noqa: S603 - our own binary
        [str(BIN / name), "serve", "--port", str(port), "--no-migrate"],
        env={**config.env_for(name), **(env or {})},
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=2.0) as client:
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"the {name} replica exited; see {log.name}")
                with suppress(httpx.HTTPError):
                    if client.get(f"{url}/readyz").status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the {name} replica was not ready after {timeout:.0f}s; see {log.name}")
                time.sleep(0.1)
        yield url
    finally:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=25)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        log.close()


def _run_coroutine(make: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run a coroutine to completion from synchronous code, also when the caller already runs an event loop
    (a test's async fixture starting a stack): then in a thread of its own."""
    import asyncio
    import threading

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(make())
        return
    failure: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(make())
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=target, name="devstack-coroutine")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]


def declare_topology(config: StackConfig) -> None:
    """Declare every service's queues before any service starts: each service declares only its own, and
    an event published before a consumer's queue exists would miss that consumer."""
    from system_topology import declare_all

    url = config.env_for("order-service")["BROKER_URL"]
    _run_coroutine(lambda: declare_all(url, config.namespace))


def drop_databases(config: StackConfig) -> None:
    """Drop a test stack's databases (they are created by each service's migrate step)."""

    from functools import partial

    from spawnpoint_kit.db import drop_database

    for name in (*SERVICES, "notification-service"):
        _run_coroutine(partial(drop_database, config.database_url(name)))


def drop_namespace(config: StackConfig) -> None:
    """Delete a test or benchmark stack's queues and exchanges (its namespace) from the broker."""

    import aio_pika

    from spawnctl.system import ALL_QUEUES
    from spawnpoint_contracts.topology import DEAD_LETTER_EXCHANGE, EVENTS_EXCHANGE

    namespace = config.namespace
    if not namespace:
        return  # the shared development namespace is never deleted

    async def delete() -> None:
        connection = await aio_pika.connect(config.common_env()["BROKER_URL"])  # the stack's broker and vhost
        try:
            channel = await connection.channel()
            for spec in ALL_QUEUES:
                base = f"{namespace}{spec.name}"
                retries = (f"{base}.retry.{d}s" for d in (1, 2, 4, 5, 8, 15, 30, 60, 120, 300, 600))
                for name in (base, f"{base}.dlq", *retries):
                    await channel.queue_delete(name)  # no error when absent (RabbitMQ 3.10+)
            for exchange in (EVENTS_EXCHANGE, DEAD_LETTER_EXCHANGE):
                await channel.exchange_delete(f"{namespace}{exchange}")
        finally:
            await connection.close()

    _run_coroutine(delete)


# command line --------------------------------------------------------------------------------------


def _write_state(stack: Stack) -> None:
    RUN_DIR.mkdir(exist_ok=True)
    (RUN_DIR / "pids.json").write_text(json.dumps({n: p.pid for n, p in stack.procs.items()}))


def _read_state() -> Mapping[str, int]:
    path = RUN_DIR / "pids.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


OPEN_THE_SHOP = (
    "Open http://localhost:3000 for the shop (localhost, not 127.0.0.1: Stripe returns customers to\n"
    "CHECKOUT_RETURN_URL on localhost, and the sign-in is kept per address); e-mails: http://localhost:8025"
)


def cmd_up(config: StackConfig) -> int:
    running = {n: p for n, p in _read_state().items() if _alive(p)}
    if running:
        print(f"already running: {', '.join(running)} (make down first)")
        return 1
    stack = Stack(config)
    try:
        stack.start(Stack.EVERYTHING)
    except PortTaken as exc:  # nothing was started
        print(f"not starting: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        print(f"failed to start: {exc}", file=sys.stderr)
        stack.stop()
        return 1
    _write_state(stack)
    for name in Stack.EVERYTHING:
        print(f"  {name:<21} {config.url(name)}   log: {stack.log_path(name).relative_to(ROOT)}")
    print(OPEN_THE_SHOP)
    print("Spawnpoint is up. `make demo` walks one order; `make down` stops it.")
    return 0


def cmd_down() -> int:
    state = _read_state()
    for name, pid in reversed(list(state.items())):
        with suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
            print(f"  stopping {name}")
    deadline = time.monotonic() + 20
    while any(_alive(p) for p in state.values()) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in state.values():
        with suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    (RUN_DIR / "pids.json").unlink(missing_ok=True)
    print("Spawnpoint is down.")
    return 0


def cmd_run(config: StackConfig) -> int:
    stack = Stack(config)
    stopping = False

    def on_signal(signum: int, _: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        try:
            stack.start(Stack.EVERYTHING)
        except PortTaken as exc:  # nothing was started
            print(f"not starting: {exc}", file=sys.stderr)
            return 1
        for name in Stack.EVERYTHING:
            print(f"  {name:<21} {config.url(name)}   log: {stack.log_path(name).relative_to(ROOT)}")
        print(OPEN_THE_SHOP)
        print("Spawnpoint is running; logs are in .run/logs. Ctrl-C stops everything.", flush=True)
        while not stopping:
            for name, proc in stack.procs.items():
                if proc.poll() is not None:
                    print(f"{name} exited with {proc.returncode}; stopping (see {stack.log_path(name)})")
                    stopping = True
            time.sleep(0.5)
    finally:
        print("stopping...")
        stack.stop()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["run", "up", "down"])
    parser.add_argument(
        "--flavor", default=os.environ.get("PANEL_FLAVOR", "pterodactyl"), choices=["pterodactyl", "pelican"]
    )
    args = parser.parse_args()
    config = StackConfig(panel_flavor=args.flavor, log_level=os.environ.get("LOG_LEVEL", "INFO"))
    if args.command == "up":
        return cmd_up(config)
    if args.command == "down":
        return cmd_down()
    return cmd_run(config)


if __name__ == "__main__":
    sys.exit(main())
