"""A three-node RabbitMQ cluster on this machine, and HAProxy in front of it, for ``make cluster``.

Each node is the machine's own ``rabbitmq-server`` (3.10) started as a separate Erlang node with its own node
name, AMQP and distribution ports, data, log and configuration folders under one temporary directory, and a
private Erlang cookie written there (``HOME`` points at that directory for the nodes and for every CLI call).
The private cookie is deliberate: a command meant for ``sp-c2@localhost`` can never authenticate against the
machine's main node (``rabbit@localhost`` on 5672), nor the one another test runs, even if a name were
mistyped. The machine-wide ``/etc/rabbitmq`` files are bypassed (``RABBITMQ_CONF_ENV_FILE``,
``RABBITMQ_CONFIG_FILE``, ``RABBITMQ_CONFIG_FILES``, ``RABBITMQ_ADVANCED_CONFIG_FILE`` all point into the
temporary directory).

Only the standard library: the pure parts (names, configuration text, parsing ``list_queues`` output) are
unit tested in ``tests/system/test_rabbit_cluster.py``.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

RABBIT_BIN = Path("/usr/lib/rabbitmq/bin")
"""The real scripts: Debian's ``/usr/sbin`` wrappers switch to the ``rabbitmq`` user and its cookie."""
MAIN_NODE_PORT = 5672
RESERVED = range(5690, 5700)
"""Another test's node lives there; never used here."""


@dataclass(frozen=True)
class Node:
    name: str
    """The Erlang node name, e.g. ``sp-c1@localhost``."""
    port: int
    dist_port: int

    @property
    def short(self) -> str:
        return self.name.split("@", 1)[0]


def plan_nodes(count: int = 3, *, first_port: int = 5701, prefix: str = "sp-c") -> list[Node]:
    """The nodes' names and ports: ``sp-c1@localhost`` on 5701 (distribution 25701), and so on. Refuses a
    plan that would reach the machine's main node or the reserved range."""
    nodes = [
        Node(f"{prefix}{i}@localhost", first_port + i - 1, 20000 + first_port + i - 1) for i in range(1, count + 1)
    ]
    for node in nodes:
        if node.port == MAIN_NODE_PORT or node.port in RESERVED or node.name.startswith("rabbit@"):
            raise ValueError(f"{node.name} on {node.port} would collide with another broker on this machine")
    return nodes


def rabbitmq_conf(node: Node, *, partition_handling: str = "pause_minority") -> str:
    """The node's ``rabbitmq.conf``: loopback only, no management plugin, logs to its own folder.
    ``pause_minority`` (the Cluster Operator's default, and ``deploy/k8s``'s) makes a node that sees fewer than
    half of the cluster stop serving clients; ``ignore`` keeps it serving (its quorum queues then have no
    leader and confirm nothing)."""
    if partition_handling not in ("pause_minority", "ignore"):
        raise ValueError(f"unsupported cluster_partition_handling {partition_handling!r}")
    return "\n".join(
        [
            f"listeners.tcp.local = 127.0.0.1:{node.port}",
            "loopback_users.guest = true",
            "log.console = false",
            "log.file.level = info",
            "disk_free_limit.absolute = 50MB",
            f"cluster_partition_handling = {partition_handling}",
            "",
        ]
    )


def haproxy_cfg(nodes: Sequence[Node], *, port: int, check_interval_ms: int = 500) -> str:
    """A TCP frontend on 127.0.0.1:``port`` balancing the nodes, as a Kubernetes Service would: a node whose
    port stops answering is taken out after two failed checks, and the sessions it held are cut
    (``on-marked-down shutdown-sessions``), so clients reconnect to a live node at once. Timeouts are long
    enough for AMQP's 60 s heartbeats."""
    lines = [
        "global",
        "    maxconn 2000",
        "defaults",
        "    mode tcp",
        "    timeout connect 3s",
        "    timeout client 3h",
        "    timeout server 3h",
        "    option tcpka",
        "frontend amqp",
        f"    bind 127.0.0.1:{port}",
        "    default_backend rabbitmq",
        "backend rabbitmq",
        "    balance leastconn",
        f"    default-server check inter {check_interval_ms} fall 2 rise 2 on-marked-down shutdown-sessions",
    ]
    lines += [f"    server {node.short} 127.0.0.1:{node.port}" for node in nodes]
    return "\n".join(lines) + "\n"


def parse_queues(output: str) -> dict[str, dict[str, object]]:
    """``rabbitmqctl list_queues ... --formatter json`` output as ``{queue name: row}``."""
    start = output.find("[")
    if start < 0:
        raise ValueError(f"no JSON in rabbitmqctl's answer: {output[:200]!r}")
    rows = json.loads(output[start:])
    return {str(row["name"]): row for row in rows}


class CommandFailed(RuntimeError):
    pass


@dataclass
class RabbitCluster:
    """Three (or ``len(nodes)``) RabbitMQ nodes joined into one cluster, and HAProxy in front of them."""

    nodes: list[Node] = field(default_factory=plan_nodes)
    base: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="sp-cluster-")))
    haproxy_port: int = 0
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    haproxy: subprocess.Popen[bytes] | None = None
    partition_handling: str = "pause_minority"
    stop_seconds: dict[str, float] = field(default_factory=dict)
    """How long each node's latest graceful stop took."""

    # layout ---------------------------------------------------------------------------------------

    def node(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    def folder(self, node: Node) -> Path:
        return self.base / node.short

    def _cli_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RABBITMQ_")}
        env.update(
            {
                "HOME": str(self.base),
                "RABBITMQ_CONF_ENV_FILE": str(self.base / "rabbitmq-env.conf"),
                "RABBITMQ_CTL_DIST_PORT_MIN": "35701",
                "RABBITMQ_CTL_DIST_PORT_MAX": "35760",
                "LC_ALL": "C.UTF-8",
            }
        )
        return env

    def _node_env(self, node: Node) -> dict[str, str]:
        folder = self.folder(node)
        return {
            **self._cli_env(),
            "RABBITMQ_NODENAME": node.name,
            "RABBITMQ_NODE_PORT": str(node.port),
            "RABBITMQ_DIST_PORT": str(node.dist_port),
            "RABBITMQ_MNESIA_BASE": str(folder / "mnesia"),
            "RABBITMQ_LOG_BASE": str(folder / "log"),
            "RABBITMQ_CONFIG_FILE": str(folder / "rabbitmq.conf"),
            "RABBITMQ_CONFIG_FILES": str(folder / "conf.d"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(folder / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(folder / "enabled_plugins"),
            "RABBITMQ_PID_FILE": str(folder / "rabbit.pid"),
        }

    def _prepare(self) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        cookie = self.base / ".erlang.cookie"
        if not cookie.exists():
            cookie.write_text(secrets.token_hex(20).upper())
            cookie.chmod(0o400)
        (self.base / "rabbitmq-env.conf").write_text(
            'ERL_EPMD_ADDRESS=127.0.0.1\nexport ERL_FLAGS="-kernel inet_dist_use_interface {127,0,0,1}"\n'
        )
        for node in self.nodes:
            folder = self.folder(node)
            for sub in ("mnesia", "log", "conf.d"):
                (folder / sub).mkdir(parents=True, exist_ok=True)
            (folder / "rabbitmq.conf").write_text(rabbitmq_conf(node, partition_handling=self.partition_handling))
            (folder / "enabled_plugins").write_text("[].\n")

    # commands ---------------------------------------------------------------------------------------

    def ctl(self, node: str, *args: str, tool: str = "rabbitmqctl", timeout: float = 120.0, check: bool = True) -> str:
        """Run a CLI tool against ``node`` (by name) with the cluster's cookie; its output."""
        done = subprocess.run(  # noqa: S603 - the machine's RabbitMQ CLI
            [str(RABBIT_BIN / tool), "-n", node, *args],
            env=self._cli_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and done.returncode != 0:
            raise CommandFailed(f"{tool} -n {node} {' '.join(args)}: {(done.stdout + done.stderr).strip()[-400:]}")
        return done.stdout

    def start_node(self, name: str, *, timeout: float = 120.0) -> None:
        """Start one node's ``rabbitmq-server`` and return when its application runs."""
        node = self.node(name)
        log = (self.folder(node) / "log" / "stdout.log").open("ab")
        self.procs[name] = subprocess.Popen(  # noqa: S603 - the machine's rabbitmq-server
            [str(RABBIT_BIN / "rabbitmq-server")],
            env=self._node_env(node),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.base,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.procs[name].poll() is not None:
                raise CommandFailed(f"{name} exited with {self.procs[name].returncode}; see {self.folder(node)}/log")
            try:
                self.ctl(name, "await_startup", "--timeout", "10", timeout=30)
                return
            except (CommandFailed, subprocess.TimeoutExpired):
                if time.monotonic() > deadline:
                    raise
                time.sleep(1.0)

    def stop_node(self, name: str, *, timeout: float = 60.0) -> None:
        """Stop one node the way an orchestrator would (a graceful ``rabbitmqctl stop``; SIGKILL after
        ``timeout``), and wait for its process to end."""
        proc = self.procs.get(name)
        started = time.monotonic()
        with suppress(CommandFailed, subprocess.TimeoutExpired):
            self.ctl(name, "stop", timeout=timeout)
        if proc is None:
            return
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        self.stop_seconds[name] = time.monotonic() - started
        # rabbitmq-server's Erlang port programs (epmd is shared and stays) end with it.
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)

    def running(self, name: str) -> bool:
        proc = self.procs.get(name)
        return proc is not None and proc.poll() is None

    def start(self) -> None:
        """Start every node, join the others to the first, start HAProxy; ``stop`` undoes all of it."""
        self._prepare()
        first, *others = self.nodes
        for node in self.nodes:
            self.start_node(node.name)
        for node in others:
            self.ctl(node.name, "stop_app")
            self.ctl(node.name, "join_cluster", first.name)
            self.ctl(node.name, "start_app")
        members = self.ctl(first.name, "cluster_status", "--formatter", "json")
        running = json.loads(members[members.find("{") :]).get("running_nodes", [])
        if sorted(running) != sorted(n.name for n in self.nodes):
            raise CommandFailed(f"cluster did not form: running nodes {running}")
        self.start_haproxy()

    def start_haproxy(self) -> None:
        binary = shutil.which("haproxy") or "/usr/sbin/haproxy"
        if not Path(binary).exists():
            raise CommandFailed("haproxy is not installed (apt-get install haproxy)")
        if not self.haproxy_port:
            self.haproxy_port = _free_port()
        config = self.base / "haproxy.cfg"
        config.write_text(haproxy_cfg(self.nodes, port=self.haproxy_port))
        log = (self.base / "haproxy.log").open("ab")
        self.haproxy = subprocess.Popen(  # noqa: S603 - the machine's haproxy
            [binary, "-db", "-f", str(config)], stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        deadline = time.monotonic() + 20
        while not _answers(self.haproxy_port):
            if self.haproxy.poll() is not None or time.monotonic() > deadline:
                raise CommandFailed(f"haproxy did not start; see {self.base / 'haproxy.log'}")
            time.sleep(0.2)

    def stop(self, *, keep: bool = False) -> None:
        """Stop HAProxy and every node, and delete the folder (unless ``keep``). Safe to call twice."""
        if self.haproxy is not None and self.haproxy.poll() is None:
            self.haproxy.terminate()
            try:
                self.haproxy.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.haproxy.kill()
        for name in list(self.procs):
            if self.running(name):
                self.stop_node(name)
        if not keep:
            shutil.rmtree(self.base, ignore_errors=True)

    @contextmanager
    def up(self, *, keep: bool = False) -> Iterator[RabbitCluster]:
        try:
            self.start()
            yield self
        finally:
            self.stop(keep=keep)

    # observing ------------------------------------------------------------------------------------

    def url(self, node: str | None = None) -> str:
        """The AMQP URL through HAProxy, or straight to one node."""
        port = self.node(node).port if node else self.haproxy_port
        return f"amqp://guest:guest@127.0.0.1:{port}/"

    def queues(self, via: str) -> dict[str, dict[str, object]]:
        """Every queue's name, type, leader, members, online members, consumers and depth, asked of ``via``."""
        out = self.ctl(
            via,
            "list_queues",
            "name",
            "type",
            "leader",
            "members",
            "online",
            "consumers",
            "messages",
            "--formatter",
            "json",
            timeout=60,
        )
        return parse_queues(out)

    def leader(self, queue: str, via: str) -> str:
        row = self.queues(via)[queue]
        return str(row.get("leader") or "")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        sock.settimeout(0.5)
        try:
            sock.connect(("127.0.0.1", port))
        except OSError:
            return False
    return True


def ensure_haproxy() -> str | None:
    """Install Debian's haproxy when it is missing and we may (root). None when it is there; otherwise why
    not, with the command to run."""
    if shutil.which("haproxy") or Path("/usr/sbin/haproxy").exists():
        return None
    command = ["apt-get", "install", "-y", "--no-install-recommends", "haproxy"]
    if os.geteuid() != 0:
        if shutil.which("sudo") is None:
            return f"haproxy is missing and this user is not root: run `sudo {' '.join(command)}`"
        command = ["sudo", "-n", *command]
    print(f"  installing haproxy: {' '.join(command)}", flush=True)
    done = subprocess.run(  # noqa: S603 - the system's package manager
        command, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"}, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        return f"`{' '.join(command)}` failed: {(done.stdout + done.stderr).strip()[-300:]}"
    return None
