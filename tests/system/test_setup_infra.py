"""The set-up behind ``make run`` / ``make test`` (scripts/setup_infra.py) on servers configured as a stock
Debian machine and a production broker are: a PostgreSQL cluster made for the test with Debian's own
``pg_hba.conf`` (peer on the socket, scram-sha-256 on 127.0.0.1: no trust anywhere) and a RabbitMQ node of its
own without the ``guest`` user. The script must create the role and the user + vhost, write URLs a real service
connects with, hand an existing development database to the role, and put everything right again on a re-run.

Needs root (pg_createcluster, rabbitmq-server, runuser), as on the development and CI machines; skipped with the
reason elsewhere. Both servers are torn down afterwards. Ports: PostgreSQL 5490-5499, AMQP 5690-5699 (AMQP
port + 20000 for Erlang distribution), away from the other tests' brokers.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from devstack import BIN, ROOT, free_port, port_is_free
from setup_infra import read_env_file

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        os.geteuid() != 0 or not all(shutil.which(t) for t in ("pg_createcluster", "rabbitmq-server", "runuser")),
        reason="needs root, pg_createcluster (postgresql-common) and rabbitmq-server",
    ),
]

RUN = uuid.uuid4().hex[:6]
CLUSTER = f"sp_setup_test_{RUN}"
NODE = f"sp-setup-test-{RUN}@localhost"
"""Names of this run's own: two sessions running this module at once (make test while another helper runs
it) must not drop each other's servers."""
SCRIPT = ROOT / "scripts" / "setup_infra.py"


def _free(ports: range, taken: frozenset[int] = frozenset()) -> int:
    for port in ports:
        if port not in taken and port_is_free(port) and port_is_free(port + 20000):
            return port
    pytest.skip(f"no free port in {ports.start}-{ports.stop - 1}")


def _run(*cmd: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(cmd, input=stdin, capture_output=True, text=True, cwd="/", timeout=60)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({done.returncode}): {done.stdout}{done.stderr}")
    return done


def _wait_port(port: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while port_is_free(port):
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing listens on {port} after {seconds:.0f}s")
        time.sleep(0.2)


@dataclass
class Cluster:
    version: str
    port: int

    def superuser(self, sql: str, database: str = "postgres") -> str:
        """As the postgres system user over the socket (peer): the only way in on a stock cluster."""
        cmd = ("runuser", "-u", "postgres", "--", "psql", "-X", "-p", str(self.port), "-d", database)
        return _run(*cmd, "-v", "ON_ERROR_STOP=1", "-Atqf", "-", stdin=sql).stdout.strip()


@pytest.fixture(scope="module")
def cluster(booting_node: Node) -> Iterator[Cluster]:
    """Created while the broker boots (each takes seconds)."""
    version = sorted(os.listdir("/usr/lib/postgresql"), key=int)[-1]
    listed = _run("pg_lsclusters", "-h").stdout.split("\n")
    port = _free(range(5490, 5500), frozenset(int(line.split()[2]) for line in listed if line.strip()))
    _run("pg_createcluster", version, CLUSTER, "-p", str(port))
    try:
        _run("pg_ctlcluster", "--skip-systemctl-redirect", version, CLUSTER, "start")
        yield Cluster(version, port)
    finally:
        _run("pg_dropcluster", "--stop", version, CLUSTER, check=False)


@dataclass
class Node:
    port: int

    def ctl(self, *args: str, stdin: str | None = None) -> str:
        return _run("rabbitmqctl", "-n", NODE, *args, stdin=stdin).stdout


@pytest.fixture(scope="module")
def booting_node() -> Iterator[Node]:
    """A RabbitMQ node of the test's own, launched (not yet answering); stopped and removed afterwards."""
    port = _free(range(5690, 5700))
    base = Path(tempfile.mkdtemp(prefix="sp-setup-rabbit-"))  # not under pytest's 0700 tmp: rabbitmq reads it
    (base / "rabbitmq.conf").write_text(f"listeners.tcp.local = 127.0.0.1:{port}\n")  # not /etc's 5672
    (base / "enabled_plugins").write_text("[].\n")  # no management or prometheus listener to collide
    (base / "rabbitmq-env.conf").write_text("")
    shutil.chown(base, "rabbitmq", "rabbitmq")
    for child in base.iterdir():
        shutil.chown(child, "rabbitmq", "rabbitmq")
    base.chmod(0o755)
    env = {
        **os.environ,
        "RABBITMQ_NODENAME": NODE,
        "RABBITMQ_NODE_PORT": str(port),
        "RABBITMQ_DIST_PORT": str(port + 20000),
        "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
        "RABBITMQ_LOG_BASE": str(base / "log"),
        "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq.conf"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
        "RABBITMQ_CONF_ENV_FILE": str(base / "rabbitmq-env.conf"),
        "RABBITMQ_PID_FILE": str(base / "pid"),
        "ERL_EPMD_ADDRESS": "127.0.0.1",
    }
    subprocess.run(["rabbitmq-server", "-detached"], env=env, cwd="/tmp", check=True, timeout=30)
    try:
        yield Node(port)
    finally:
        if _run("rabbitmqctl", "-n", NODE, "stop", check=False).returncode != 0:
            with suppress(OSError, ValueError):  # it never came up: the process we launched still goes
                os.kill(int((base / "pid").read_text()), signal.SIGKILL)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def node(booting_node: Node, cluster: Cluster) -> Node:
    _wait_port(booting_node.port, 60)
    booting_node.ctl("delete_user", "guest")  # as production brokers do
    return booting_node


def _setup(cluster: Cluster, node: Node, env_file: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """The script as the Makefile runs it, pointed at the test's servers; the session's own URLs removed."""
    env = {k: v for k, v in os.environ.items() if k not in ("SPAWNPOINT_PG_URL", "BROKER_URL", "RABBITMQ_NODENAME")}
    cmd = [sys.executable, str(SCRIPT), "--env-file", str(env_file), "--pg-port", str(cluster.port)]
    cmd += ["--amqp-port", str(node.port), "--rabbitmq-node", NODE, "--no-install", *extra]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)


async def _logs_in_as_guest(port: int) -> bool:
    import aio_pika

    try:
        connection = await aio_pika.connect(f"amqp://guest:guest@127.0.0.1:{port}/", timeout=5)
    except Exception:
        return False
    await connection.close()
    return True


@pytest.fixture(scope="module")
def env_file(cluster: Cluster, node: Node, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first set-up, on servers as a newcomer's machine would have them: a stock cluster where ``make run``
    once created ``spawnpoint_orders`` as ``postgres``, and a broker without guest."""
    trust = _run(
        "psql", "-X", "-w", "-h", "127.0.0.1", "-p", str(cluster.port), "-U", "postgres", "-c", "", check=False
    )
    assert trust.returncode != 0 and "password" in trust.stderr, "the test cluster must not trust 127.0.0.1"
    assert not asyncio.run(_logs_in_as_guest(node.port)), "the test broker must refuse guest"
    cluster.superuser(
        "CREATE DATABASE spawnpoint_orders;\n"
        "\\c spawnpoint_orders\n"
        "CREATE TYPE legacy_state AS ENUM ('a', 'b');\n"
        "CREATE TABLE legacy_rows (id serial PRIMARY KEY, state legacy_state);\n"
        "CREATE FUNCTION legacy_fn() RETURNS int LANGUAGE sql AS 'SELECT 1';\n"
    )
    path = tmp_path_factory.mktemp("setup") / "env"
    done = _setup(cluster, node, path)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "creating role spawnpoint" in out and "peer authentication" in out, out
    assert "handing the existing database spawnpoint_orders" in out, out
    assert "creating user spawnpoint and vhost spawnpoint" in out, out
    return path


def test_the_setup_writes_urls_of_a_dedicated_role_user_and_vhost_readable_by_its_owner_only(env_file: Path) -> None:
    values = read_env_file(env_file)
    pg, broker = urlsplit(values["SPAWNPOINT_PG_URL"]), urlsplit(values["BROKER_URL"])
    assert (pg.scheme, pg.username, pg.path) == ("postgresql+asyncpg", "spawnpoint", "")
    assert pg.password and len(pg.password) >= 32
    assert (broker.scheme, broker.username, broker.path) == ("amqp", "spawnpoint", "/spawnpoint")
    assert broker.password and broker.password != pg.password
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600


def test_a_service_started_with_the_written_urls_connects_on_its_vhost_and_owns_its_database(
    cluster: Cluster, node: Node, env_file: Path, tmp_path: Path
) -> None:
    values = read_env_file(env_file)
    namespace = f"tsetup{uuid.uuid4().hex[:6]}."
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.endswith("_DB_URL")}
    env |= {
        "ORDER_DB_URL": f"{values['SPAWNPOINT_PG_URL']}/spawnpoint_orders",
        "BROKER_URL": values["BROKER_URL"],
        "SPAWNPOINT_NAMESPACE": namespace,
        "PROVISIONER_URL": "",
    }
    log = tmp_path / "order-service.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(BIN / "order-service"), "serve", "--port", str(port)], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 60
        status = None
        while status != 200:
            assert proc.poll() is None, f"order-service exited: {log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"not ready after 60s ({status}): {log.read_text()[-3000:]}"
            try:
                status = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code
            except httpx.HTTPError:
                status = None
            time.sleep(0.2)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    queues = node.ctl("list_queues", "-p", "spawnpoint", "-q", "--no-table-headers", "name").split()
    assert any(q.startswith(f"{namespace}order-service") for q in queues), queues
    elsewhere = node.ctl("list_queues", "-p", "/", "-q", "--no-table-headers", "name").split()
    assert not [q for q in elsewhere if q.startswith(namespace)], elsewhere
    owners = cluster.superuser(
        "SELECT DISTINCT pg_get_userbyid(relowner) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' UNION SELECT pg_get_userbyid(typowner) FROM pg_type WHERE typname = "
        "'legacy_state' UNION SELECT pg_get_userbyid(proowner) FROM pg_proc WHERE proname = 'legacy_fn' UNION "
        "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'spawnpoint_orders'",
        database="spawnpoint_orders",
    )
    assert owners.split() == ["spawnpoint"]  # the adopted objects, and the tables the migration added
    assert "orders" in cluster.superuser("SELECT tablename FROM pg_tables", database="spawnpoint_orders").split()


def test_a_rerun_reuses_the_file_and_sets_changed_passwords_again(cluster: Cluster, node: Node, env_file: Path) -> None:
    before = env_file.read_text()
    again = _setup(cluster, node, env_file)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "creating" not in again.stdout and "logs in" in again.stdout, again.stdout
    cluster.superuser("ALTER ROLE spawnpoint PASSWORD 'changed-elsewhere';")
    node.ctl("change_password", "spawnpoint", stdin="changed-elsewhere")
    repaired = _setup(cluster, node, env_file)
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert "setting the role up again" in repaired.stdout, repaired.stdout
    assert "setting its password to the one in" in repaired.stdout, repaired.stdout
    assert env_file.read_text() == before  # the same URLs: what already runs with them keeps working
    assert "logs in" in _setup(cluster, node, env_file).stdout


def test_a_second_checkout_of_the_same_user_takes_the_shared_urls_and_locks_nobody_out(
    cluster: Cluster, node: Node, env_file: Path, tmp_path: Path
) -> None:
    """Two clones (or CI's fresh clone beside a developer's) must not reset each other's passwords: with a
    file shared per OS user, the second set-up takes the first one's URLs and changes nothing on the servers."""
    shared = tmp_path / "shared-env"
    first = _setup(cluster, node, env_file, "--shared-file", str(shared))
    assert first.returncode == 0, first.stdout + first.stderr
    assert read_env_file(shared) == read_env_file(env_file)
    second_checkout = tmp_path / "other-clone" / ".run" / "env"
    second = _setup(cluster, node, second_checkout, "--shared-file", str(shared))
    assert second.returncode == 0, second.stdout + second.stderr
    assert read_env_file(second_checkout) == read_env_file(env_file)
    assert "setting" not in second.stdout and "creating" not in second.stdout, second.stdout
    assert "logs in" in _setup(cluster, node, env_file).stdout, "the first checkout still logs in"


def test_without_the_right_to_run_rabbitmqctl_a_broker_that_takes_guest_keeps_working_and_says_how_to_move(
    cluster: Cluster, node: Node, env_file: Path, tmp_path: Path
) -> None:
    """A machine where guest/guest worked before the set-up (RabbitMQ's default from localhost) but rabbitmqctl
    cannot be run (no root, no sudo without a prompt: here, no rabbitmqctl on PATH)."""
    node.ctl("add_user", "guest", stdin="guest")
    node.ctl("set_permissions", "-p", "/", "guest", ".*", ".*", ".*")
    try:
        own = tmp_path / "env"
        own.write_text(f"SPAWNPOINT_PG_URL={read_env_file(env_file)['SPAWNPOINT_PG_URL']}\n")
        env = {"PATH": str(tmp_path / "no-tools"), "HOME": str(tmp_path)}
        cmd = [sys.executable, str(SCRIPT), "--env-file", str(own), "--pg-port", str(cluster.port)]
        cmd += ["--amqp-port", str(node.port), "--no-install"]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
        assert read_env_file(own)["BROKER_URL"] == f"amqp://guest:guest@127.0.0.1:{node.port}/"
        assert "guest logs in from this machine" in done.stdout, done.stdout
        assert "sudo rabbitmqctl add_user spawnpoint" in done.stdout
        assert "sudo rabbitmqctl set_permissions -p spawnpoint spawnpoint" in done.stdout
    finally:
        node.ctl("delete_user", "guest")


def test_missing_servers_without_the_right_to_install_print_the_commands_and_stop(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"  # a PATH with apt-get but neither PostgreSQL nor RabbitMQ
    bin_dir.mkdir()
    (bin_dir / "apt-get").symlink_to(shutil.which("apt-get") or "/usr/bin/apt-get")
    env_file = tmp_path / "env"
    env = {"PATH": str(bin_dir), "HOME": str(tmp_path)}
    cmd = [sys.executable, str(SCRIPT), "--env-file", str(env_file), "--pg-port", str(free_port()), "--no-install"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "postgresql not installed; install with:" in done.stderr, done.stderr
    assert "sudo apt-get update && sudo apt-get install -y postgresql" in done.stderr
    assert not env_file.exists()


def test_a_missing_server_is_installed_from_the_distributions_packages_saying_each_step(tmp_path: Path) -> None:
    """Allowed to install (root here): apt-get runs, each step printed first. A stand-in apt-get records what it
    was asked and installs nothing, so the set-up then stops at the next step, saying which."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "apt-calls"
    fake = bin_dir / "apt-get"
    fake.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    fake.chmod(0o755)
    env = {"PATH": str(bin_dir), "HOME": str(tmp_path)}
    cmd = [sys.executable, str(SCRIPT), "--env-file", str(tmp_path / "env"), "--pg-port", str(free_port())]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert calls.read_text().splitlines() == ["update", "install -y postgresql"]
    assert "postgresql not installed; installing them from the distribution's packages" in done.stdout
    assert "refreshing the package lists: apt-get update" in done.stdout
    assert "installing postgresql: apt-get install -y postgresql" in done.stdout
    assert done.returncode == 1 and "could not run" in done.stderr, done.stderr
