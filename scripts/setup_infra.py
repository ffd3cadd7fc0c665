"""Sets up the PostgreSQL and RabbitMQ that ``make run`` and ``make test`` use, and writes their URLs to
``.run/env`` (ignored by git), which the Makefile and every test session load.

Why: a stock Debian or Ubuntu PostgreSQL authenticates by peer on its socket and by password on 127.0.0.1, and
a production-like RabbitMQ has no ``guest``; nothing here may assume trust authentication or guest/guest. So
the set-up makes a dedicated PostgreSQL role (``spawnpoint``: LOGIN CREATEDB, a generated password) through
the local superuser, and a dedicated RabbitMQ user and vhost (both ``spawnpoint``) through ``rabbitmqctl``, and
every service, test stack and benchmark connects with those URLs.

What it does, saying each step:

1. PostgreSQL answers on ``SPAWNPOINT_PG_HOST:SPAWNPOINT_PG_PORT`` (127.0.0.1:5432), or is started
   (``pg_ctlcluster``), or installed from the distribution's packages and started when we may install
   (root, or ``sudo`` without a prompt); otherwise the exact commands are printed and it stops (exit 1).
2. The URL in ``.run/env`` connects, or the role is created (or its password set again, when it exists with
   another one) through the superuser: ``postgres`` over TCP when that is trusted, else peer authentication
   on the socket as the ``postgres`` system user (``runuser`` as root, ``sudo -n -u postgres`` otherwise).
   Development databases that already exist under another owner are handed to the role.
3. The same for RabbitMQ on ``SPAWNPOINT_AMQP_HOST:SPAWNPOINT_AMQP_PORT`` (127.0.0.1:5672): started with
   ``rabbitmq-server -detached`` or installed; the user and vhost made with ``rabbitmqctl`` (``-n`` from
   ``RABBITMQ_NODENAME`` when set).
4. Both URLs are checked with the clients the services use (asyncpg, aio-pika), then written.

Idempotent and quick when nothing changed (two logins). ``SPAWNPOINT_PG_URL`` or ``BROKER_URL`` set in the
environment win: they are checked and nothing is created for them.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pwd
import secrets
import shlex
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parents[1]
ENV_FILE = ROOT / ".run" / "env"
SHARED_ENV_FILE = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "spawnpoint" / "env"
"""The same URLs for every checkout of this OS user: a new clone takes the role's and the broker user's
password from here instead of generating one and setting it on the shared role, which would lock out every
other checkout (and a test run going on in one) until its next ``make``."""
PG_KEY = "SPAWNPOINT_PG_URL"
"""The PostgreSQL server URL without a database; each service and test stack appends its own database."""
BROKER_KEY = "BROKER_URL"
ROLE = "spawnpoint"
VHOST = "spawnpoint"
LEGACY_PG_URL = "postgresql+asyncpg://postgres@{host}:{port}"
"""What everything used before the set-up existed (trust authentication for ``postgres``): the fallback when
no ``.run/env`` was written, so a machine set up that way keeps working."""
DEV_DATABASES = (
    "spawnpoint_orders",
    "spawnpoint_payments",
    "spawnpoint_provisioner",
    "spawnpoint_status",
    "spawnpoint_notifications",
)
"""The databases ``make run`` uses (devstack's ``database_prefix`` ``spawnpoint``)."""


class SetupError(Exception):
    """The set-up cannot finish by itself: what is wrong, and the commands that fix it."""

    def __init__(self, message: str, commands: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.commands = list(commands)


def say(message: str) -> None:
    print(f"==> {message}", flush=True)


# the local file ------------------------------------------------------------------------------------


def read_env_file(path: Path = ENV_FILE) -> dict[str, str]:
    """``KEY='value'`` lines (shell and dotenv syntax both); comments and blank lines skipped."""
    values: dict[str, str] = {}
    if not path.exists():
        return values
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, raw = line.partition("=")
        parsed = shlex.split(raw)
        values[key.strip()] = parsed[0] if parsed else ""
    return values


def write_env_file(path: Path, values: Mapping[str, str]) -> None:
    """Readable by the owner only (it holds passwords)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        "# Written by scripts/setup_infra.py (make infra): the development PostgreSQL role's and RabbitMQ",
        "# user's URLs. Loaded by the Makefile (scripts/setup_env.sh) and every test session (conftest.py);",
        "# a variable set in the environment wins. Delete this file to set everything up again.",
        *(f"{key}={shlex.quote(value)}" for key, value in values.items()),
    ]
    tmp = path.with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.chmod(0o600)
    tmp.replace(path)


def load_env(path: Path = ENV_FILE) -> None:
    """Add the file's variables to this process's environment, those already set winning. Falls back to the
    legacy URL for PostgreSQL so that ``SPAWNPOINT_PG_URL`` is always there for tests that build their own."""
    for key, value in read_env_file(path).items():
        os.environ.setdefault(key, value)
    os.environ.setdefault(PG_KEY, legacy_pg_url())


def legacy_pg_url() -> str:
    return LEGACY_PG_URL.format(
        host=os.environ.get("SPAWNPOINT_PG_HOST", "127.0.0.1"), port=os.environ.get("SPAWNPOINT_PG_PORT", "5432")
    )


def pg_server_url() -> str:
    """The PostgreSQL server URL (no database) from the environment, else the legacy trust URL."""
    return os.environ.get(PG_KEY) or legacy_pg_url()


def masked(url: str) -> str:
    """The URL with its password replaced by ``***``, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return parts._replace(netloc=netloc).geturl()


def shown(path: Path) -> str:
    """``.run/env`` for the repository's file, the full path for another."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


# processes and privileges --------------------------------------------------------------------------


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def wait_port(host: str, port: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if port_open(host, port):
            return True
        time.sleep(0.5)
    return False


def is_root() -> bool:
    return os.geteuid() == 0


def passwordless_sudo() -> bool:
    if shutil.which("sudo") is None:
        return False
    return subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode == 0  # noqa: S607


def as_root(cmd: Sequence[str]) -> list[str] | None:
    """``cmd`` run with root's rights, or None when we have none."""
    if is_root():
        return list(cmd)
    if passwordless_sudo():
        return ["sudo", "-n", *cmd]
    return None


def as_user(user: str, cmd: Sequence[str]) -> list[str] | None:
    """``cmd`` run as system user ``user`` (for peer authentication), or None when we cannot."""
    try:
        pwd.getpwnam(user)
    except KeyError:
        return None
    if is_root():
        return ["runuser", "-u", user, "--", *cmd]
    if pwd.getpwuid(os.geteuid()).pw_name == user:
        return list(cmd)
    if passwordless_sudo():
        return ["sudo", "-n", "-u", user, *cmd]
    return None


def run(cmd: Sequence[str], *, stdin: str | None = None, env: Mapping[str, str] | None = None) -> tuple[int, str]:
    done = subprocess.run(  # noqa: S603 - our own fixed commands
        list(cmd), input=stdin, capture_output=True, text=True, env=dict(env) if env else None, cwd="/"
    )
    return done.returncode, (done.stdout + done.stderr).strip()


def run_step(description: str, cmd: Sequence[str]) -> None:
    """A step the user sees, with its output (package installs take a while)."""
    say(f"{description}: {shlex.join(cmd)}")
    try:
        done = subprocess.run(list(cmd), cwd="/")  # noqa: S603
    except OSError as exc:
        raise SetupError(f"`{shlex.join(cmd)}` could not run: {exc}") from exc
    if done.returncode != 0:
        raise SetupError(f"`{shlex.join(cmd)}` failed with exit code {done.returncode}")


def install_packages(packages: Sequence[str], *, allowed: bool) -> None:
    """Install from the distribution's packages, or say exactly how and stop."""
    apt = shutil.which("apt-get")
    commands = [f"sudo apt-get update && sudo apt-get install -y {' '.join(packages)}"]
    if apt is None:
        brew = {"postgresql": "postgresql@15", "rabbitmq-server": "rabbitmq"}
        names = " ".join(brew.get(p, p) for p in packages)
        raise SetupError(
            f"{' and '.join(packages)} does not answer, and this is not a Debian/Ubuntu machine (no apt-get). "
            "Install and start it with your system's packages; on macOS with Homebrew:",
            [f"brew install {names}", *(f"brew services start {n}" for n in names.split())],
        )
    update, install = as_root(["apt-get", "update"]), as_root(["apt-get", "install", "-y", *packages])
    if not allowed or update is None or install is None:
        raise SetupError(f"{' and '.join(packages)} not installed; install with:", commands)
    os.environ.setdefault("DEBIAN_FRONTEND", "noninteractive")  # no debconf questions
    say(f"{' and '.join(packages)} not installed; installing them from the distribution's packages")
    run_step("refreshing the package lists", update)
    run_step(f"installing {' '.join(packages)}", install)


# PostgreSQL ----------------------------------------------------------------------------------------


@dataclass
class Target:
    pg_host: str = "127.0.0.1"
    pg_port: int = 5432
    amqp_host: str = "127.0.0.1"
    amqp_port: int = 5672
    rabbit_node: str | None = None
    env_file: Path = ENV_FILE
    shared_file: Path | None = None
    """Where the URLs are shared between checkouts (``SHARED_ENV_FILE`` for the repository's own file)."""
    install: bool = True
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))

    @property
    def local_pg(self) -> bool:
        return self.pg_host in ("127.0.0.1", "localhost", "::1")


def pg_clusters() -> list[tuple[str, str, int, str]]:
    """(version, name, port, status) of the Debian clusters on this machine."""
    if shutil.which("pg_lsclusters") is None:
        return []
    code, out = run(["pg_lsclusters", "-h"])
    clusters = []
    for line in out.splitlines() if code == 0 else []:
        cols = line.split()
        if len(cols) >= 4 and cols[2].isdigit():
            clusters.append((cols[0], cols[1], int(cols[2]), cols[3]))
    return clusters


def ensure_postgres_running(t: Target) -> None:
    if port_open(t.pg_host, t.pg_port):
        return
    if not t.local_pg:
        raise SetupError(f"PostgreSQL does not answer on {t.pg_host}:{t.pg_port} (SPAWNPOINT_PG_HOST); start it")
    if shutil.which("pg_ctlcluster") is None or shutil.which("psql") is None:
        install_packages(["postgresql"], allowed=t.install)
    clusters = pg_clusters()
    mine = [c for c in clusters if c[2] == t.pg_port]
    if not mine and not clusters:
        installed = os.listdir("/usr/lib/postgresql") if os.path.isdir("/usr/lib/postgresql") else []
        version = max(installed, key=lambda v: [int(x) for x in v.split(".") if x.isdigit()], default="15")
        create = as_root(["pg_createcluster", version, "main", "-p", str(t.pg_port)])
        if create is None:
            raise SetupError(
                "PostgreSQL has no cluster; create and start one with:",
                [
                    f"sudo pg_createcluster {version} main -p {t.pg_port}",
                    f"sudo pg_ctlcluster {version} main start",
                ],
            )
        run_step("creating a PostgreSQL cluster", create)
        mine = [c for c in pg_clusters() if c[2] == t.pg_port]
    if not mine:
        listed = ", ".join(f"{v}/{n} on {p}" for v, n, p, _ in clusters)
        raise SetupError(
            f"no PostgreSQL cluster on port {t.pg_port} (there is {listed}); start it, or set SPAWNPOINT_PG_PORT"
        )
    version, name, _, _ = mine[0]
    start = ["pg_ctlcluster", "--skip-systemctl-redirect", version, name, "start"]
    command = as_root(start) or as_user("postgres", start)
    if command is None:
        raise SetupError(f"PostgreSQL {version}/{name} is stopped; start it with:", [f"sudo {shlex.join(start)}"])
    run_step(f"PostgreSQL does not answer on {t.pg_host}:{t.pg_port}; starting cluster {version}/{name}", command)
    if not wait_port(t.pg_host, t.pg_port, 30):
        raise SetupError(
            f"PostgreSQL {version}/{name} was started but does not answer on port {t.pg_port}; see "
            f"/var/log/postgresql/postgresql-{version}-{name}.log"
        )


async def _pg_login(url: str) -> None:
    import asyncpg

    parts = urlsplit(url)
    connection = await asyncpg.connect(
        host=parts.hostname,
        port=parts.port or 5432,
        user=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        database="postgres",
        timeout=5,
    )
    await connection.close()


def pg_login_error(url: str) -> str | None:
    """None when the server URL logs in (with the client the services use), else why not."""
    try:
        asyncio.run(_pg_login(url))
    except Exception as exc:  # any refusal is an answer here: wrong password, no such role, pg_hba
        return f"{type(exc).__name__}: {exc}"
    return None


def superuser_psql(t: Target) -> tuple[list[str], str] | None:
    """A psql command line that runs SQL (on stdin) as the superuser, and how it got in; None if none does."""
    tries: list[tuple[list[str] | None, str]] = [
        (["psql", "-X", "-w", "-h", t.pg_host, "-p", str(t.pg_port), "-U", "postgres"], "user postgres over TCP"),
    ]
    if t.local_pg:
        peer = as_user("postgres", ["psql", "-X", "-w", "-p", str(t.pg_port)])
        how = "peer authentication on the socket as system user postgres"
        tries.append((peer, how))
        me = pwd.getpwuid(os.geteuid()).pw_name
        if me not in ("postgres", "root"):  # Homebrew's initdb: the installing user is the superuser
            tries.append((["psql", "-X", "-w", "-p", str(t.pg_port), "-U", me], f"user {me} on the socket"))
    env = {k: v for k, v in os.environ.items() if k not in ("PGPASSWORD", "PGUSER", "PGHOST", "PGPORT")}
    if shutil.which("psql") is None:
        return None
    for cmd, how in tries:
        if cmd is None:
            continue
        code, out = run(
            [*cmd, "-d", "postgres", "-Atc", "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"], env=env
        )
        if code == 0 and out.strip().endswith("t"):
            return cmd, how
    return None


def psql(su: list[str], sql: str, database: str = "postgres") -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PGPASSWORD", "PGUSER", "PGHOST", "PGPORT")}
    code, out = run([*su, "-d", database, "-v", "ON_ERROR_STOP=1", "-Aqt", "-f", "-"], stdin=sql, env=env)
    if code != 0:
        raise SetupError(f"psql as the PostgreSQL superuser failed: {out}")
    return out


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def role_sql(password: str) -> str:
    """Create the role, or set its password and rights again (it may exist with another password)."""
    pw = _literal(password)
    return (
        "DO $$ BEGIN\n"
        f"  IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{ROLE}') THEN\n"
        f"    ALTER ROLE {ROLE} WITH LOGIN CREATEDB PASSWORD {pw};\n"
        "  ELSE\n"
        f"    CREATE ROLE {ROLE} WITH LOGIN CREATEDB PASSWORD {pw};\n"
        "  END IF;\n"
        "END $$;\n"
    )


ADOPT_SQL = r"""
DO $$ DECLARE r record; BEGIN
  FOR r IN SELECT n.nspname FROM pg_namespace n
      WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%'
        AND pg_get_userbyid(n.nspowner) NOT IN ('spawnpoint', 'pg_database_owner') LOOP
    EXECUTE format('ALTER SCHEMA %I OWNER TO spawnpoint', r.nspname);
  END LOOP;
  FOR r IN SELECT n.nspname, c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%'
        AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') AND pg_get_userbyid(c.relowner) <> 'spawnpoint'
        AND NOT (c.relkind = 'S' AND EXISTS (
          SELECT FROM pg_depend d
          WHERE d.objid = c.oid AND d.classid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')))
  LOOP
    EXECUTE format('ALTER %s %I.%I OWNER TO spawnpoint',
      CASE r.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'f' THEN 'FOREIGN TABLE'
                     WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END, r.nspname, r.relname);
  END LOOP;
  FOR r IN SELECT n.nspname, t.typname, t.typtype FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
      WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%'
        AND t.typtype IN ('e', 'd', 'r') AND pg_get_userbyid(t.typowner) <> 'spawnpoint' LOOP
    EXECUTE format('ALTER %s %I.%I OWNER TO spawnpoint', CASE r.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END,
                   r.nspname, r.typname);
  END LOOP;
  FOR r IN SELECT p.oid::regprocedure AS routine FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
      WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%'
        AND pg_get_userbyid(p.proowner) <> 'spawnpoint'
        AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e') LOOP
    EXECUTE format('ALTER ROUTINE %s OWNER TO spawnpoint', r.routine);
  END LOOP;
END $$;
"""
"""Hand every object of one database to the role (``REASSIGN OWNED BY postgres`` is refused: the bootstrap
superuser owns system objects). Sequences owned by a column follow their table; extensions' objects stay. The
role is written out (``ROLE``) so that the block is a constant, never built from input."""


def adopt_dev_databases(su: list[str]) -> list[str]:
    """Development databases made before the role existed (by ``postgres`` under trust authentication) are
    handed to the role, so ``make run`` keeps its data and can still migrate them."""
    names = ", ".join(_literal(n) for n in DEV_DATABASES)
    out = psql(
        su,
        f"SELECT datname FROM pg_database WHERE datname IN ({names}) AND pg_get_userbyid(datdba) <> '{ROLE}';",  # noqa: S608 - constants
    )
    adopted = [line.strip() for line in out.splitlines() if line.strip()]
    for name in adopted:
        say(f"PostgreSQL: handing the existing database {name} and its objects to role {ROLE}")
        psql(su, f'ALTER DATABASE "{name}" OWNER TO {ROLE};')
        psql(su, ADOPT_SQL, database=name)
    return adopted


def setup_postgres(t: Target, current: Mapping[str, str]) -> str:
    """The server URL (no database) every service and test uses, checked."""
    if PG_KEY in t.environ:
        url = t.environ[PG_KEY]
        say(f"PostgreSQL: {PG_KEY} is set in the environment ({masked(url)}); checking it, creating nothing")
        error = pg_login_error(url)
        if error:
            raise SetupError(f"{PG_KEY}={masked(url)} does not log in: {error}")
        return url
    ensure_postgres_running(t)
    host = "127.0.0.1" if t.pg_host == "localhost" else t.pg_host
    known = current.get(PG_KEY)
    if known and urlsplit(known).hostname == host and urlsplit(known).port == t.pg_port:
        if pg_login_error(known) is None:
            say(f"PostgreSQL: role {urlsplit(known).username} from {shown(t.env_file)} logs in on {host}:{t.pg_port}")
            return known
        say(f"PostgreSQL: the URL in {shown(t.env_file)} does not log in; setting the role up again")
    password = urlsplit(known).password if known and urlsplit(known).username == ROLE else None
    password = password or secrets.token_hex(16)
    url = f"postgresql+asyncpg://{ROLE}:{password}@{host}:{t.pg_port}"
    found = superuser_psql(t)
    if found is None:
        pg_login_hint = (
            f"sudo -u postgres psql -p {t.pg_port} -c \"CREATE ROLE {ROLE} LOGIN CREATEDB PASSWORD '{password}'\""
        )
        # Keep the password, so that running the printed command and then make again finishes the job.
        write_env_file(t.env_file, {**current, PG_KEY: url})
        raise SetupError(
            f"cannot reach the PostgreSQL superuser (not trusted over TCP, and no peer login as system user "
            f"postgres without a password prompt) to create role {ROLE}; run this once, then make again:",
            [pg_login_hint],
        )
    su, how = found
    say(f"PostgreSQL: creating role {ROLE} (LOGIN CREATEDB, a generated password) as the superuser, by {how}")
    psql(su, role_sql(password))
    adopt_dev_databases(su)
    error = pg_login_error(url)
    if error:
        raise SetupError(
            f"role {ROLE} was created but cannot log in over TCP on {host}:{t.pg_port} with its password: {error}. "
            "pg_hba.conf must allow password logins from 127.0.0.1 (Debian's default line: "
            "host all all 127.0.0.1/32 scram-sha-256)"
        )
    say(f"PostgreSQL: role {ROLE} logs in on {host}:{t.pg_port}")
    return url


# RabbitMQ ------------------------------------------------------------------------------------------


def ensure_rabbitmq_running(t: Target) -> None:
    if port_open(t.amqp_host, t.amqp_port):
        return
    if t.amqp_host not in ("127.0.0.1", "localhost", "::1"):
        raise SetupError(f"RabbitMQ does not answer on {t.amqp_host}:{t.amqp_port} (SPAWNPOINT_AMQP_HOST); start it")
    if shutil.which("rabbitmq-server") is None or shutil.which("rabbitmqctl") is None:
        install_packages(["rabbitmq-server"], allowed=t.install)
    start = as_root(["rabbitmq-server", "-detached"])
    if start is None:
        raise SetupError("RabbitMQ is stopped; start it with:", ["sudo rabbitmq-server -detached"])
    run_step(f"RabbitMQ does not answer on {t.amqp_host}:{t.amqp_port}; starting it", start)
    if not wait_port(t.amqp_host, t.amqp_port, 60):
        raise SetupError(f"RabbitMQ was started but does not answer on port {t.amqp_port}; see /var/log/rabbitmq/")


async def _amqp_login(url: str) -> None:
    import aio_pika

    connection = await aio_pika.connect(url, timeout=5)
    await connection.close()


def amqp_login_error(url: str) -> str | None:
    try:
        asyncio.run(_amqp_login(url))
    except Exception as exc:  # refused credentials, missing vhost, no permission: all answers
        return f"{type(exc).__name__}: {exc}"
    return None


def rabbitmqctl(t: Target, *args: str, stdin: str | None = None) -> tuple[int, str]:
    base = ["rabbitmqctl", *(["-n", t.rabbit_node] if t.rabbit_node else []), *args]
    if shutil.which("rabbitmqctl") is None:
        return 127, "rabbitmqctl is not on PATH"
    if not is_root():  # a node the user runs (Homebrew) takes the user's own rabbitmqctl
        code, out = run(base, stdin=stdin)
        if code == 0 or "already exists" in out or not passwordless_sudo():
            return code, out
    cmd = as_root(base)
    if cmd is None:
        return 126, "rabbitmqctl needs root (or sudo without a prompt)"
    return run(cmd, stdin=stdin)


def setup_rabbitmq(t: Target, current: Mapping[str, str]) -> str:
    if BROKER_KEY in t.environ:
        url = t.environ[BROKER_KEY]
        say(f"RabbitMQ: {BROKER_KEY} is set in the environment ({masked(url)}); checking it, creating nothing")
        error = amqp_login_error(url)
        if error:
            raise SetupError(f"{BROKER_KEY}={masked(url)} does not log in: {error}")
        return url
    ensure_rabbitmq_running(t)
    host = "127.0.0.1" if t.amqp_host == "localhost" else t.amqp_host
    known = current.get(BROKER_KEY)
    # (another user in the file is the guest fallback below: each run tries for the dedicated user again)
    same = known is not None and (urlsplit(known).hostname, urlsplit(known).port) == (host, t.amqp_port)
    if known and same and urlsplit(known).username == ROLE:
        if amqp_login_error(known) is None:
            say(f"RabbitMQ: user {ROLE} from {shown(t.env_file)} logs in on {host}:{t.amqp_port} (vhost {VHOST})")
            return known
        say(f"RabbitMQ: the URL in {shown(t.env_file)} does not log in; setting the user up again")
    password = urlsplit(known).password if known and urlsplit(known).username == ROLE else None
    password = password or secrets.token_hex(16)
    url = f"amqp://{ROLE}:{password}@{host}:{t.amqp_port}/{VHOST}"
    node = f" on node {t.rabbit_node}" if t.rabbit_node else ""
    say(f"RabbitMQ: creating user {ROLE} and vhost {VHOST} with rabbitmqctl{node}")
    code, out = rabbitmqctl(t, "add_user", ROLE, stdin=password)  # the password on stdin, not in `ps`
    if code != 0 and "already exists" in out:
        say(f"RabbitMQ: user {ROLE} exists; setting its password to the one in {shown(t.env_file)}")
        code, out = rabbitmqctl(t, "change_password", ROLE, stdin=password)
    if code == 0:
        code, out = rabbitmqctl(t, "add_vhost", VHOST)
    if code == 0:
        code, out = rabbitmqctl(t, "set_permissions", "-p", VHOST, ROLE, ".*", ".*", ".*")
    if code != 0:
        n = f"-n {t.rabbit_node} " if t.rabbit_node else ""
        commands = [
            f"sudo rabbitmqctl {n}add_user {ROLE} '{password}'",
            f"sudo rabbitmqctl {n}add_vhost {VHOST}",
            f"sudo rabbitmqctl {n}set_permissions -p {VHOST} {ROLE} '.*' '.*' '.*'",
        ]
        guest = f"amqp://guest:guest@{host}:{t.amqp_port}/"
        if amqp_login_error(guest) is None:  # a machine that worked before the set-up keeps working
            say(f"RabbitMQ: cannot create user {ROLE} ({out}); guest logs in from this machine, so using guest on")
            say("    vhost / until you run these once (then make again moves everything to the dedicated user):")
            for command in commands:
                say(f"    {command}")
            return guest
        write_env_file(t.env_file, {**current, BROKER_KEY: url})  # the printed commands use this password
        raise SetupError(
            f"could not create the RabbitMQ user with rabbitmqctl: {out}; run these once, then make again:", commands
        )
    error = amqp_login_error(url)
    if error:
        raise SetupError(f"RabbitMQ user {ROLE} was created but cannot log in on {host}:{t.amqp_port}: {error}")
    say(f"RabbitMQ: user {ROLE} logs in on {host}:{t.amqp_port} (vhost {VHOST})")
    return url


# command line --------------------------------------------------------------------------------------


def setup(t: Target) -> dict[str, str]:
    current = read_env_file(t.env_file)
    shared = read_env_file(t.shared_file) if t.shared_file else {}
    for key in (PG_KEY, BROKER_KEY):
        if key not in current and key in shared:
            say(f"{key}: taken from {t.shared_file}, which every checkout of this user shares")
            current[key] = shared[key]
    values = dict(current)
    pg = setup_postgres(t, current)
    if PG_KEY not in t.environ:
        values[PG_KEY] = pg
    broker = setup_rabbitmq(t, values)
    if BROKER_KEY not in t.environ:
        values[BROKER_KEY] = broker
    if values != current or not t.env_file.exists():
        write_env_file(t.env_file, values)
        say(f"wrote {shown(t.env_file)} ({', '.join(f'{k}={masked(v)}' for k, v in values.items())})")
    ours = {k: v for k, v in values.items() if k in (PG_KEY, BROKER_KEY) and k not in t.environ}
    if t.shared_file and ours and {**shared, **ours} != shared:
        write_env_file(t.shared_file, {**shared, **ours})
        say(f"wrote {t.shared_file} (other checkouts of this user take the same URLs from it)")
    return values


def main(argv: Sequence[str] | None = None) -> int:
    env = os.environ
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--env-file", type=Path, default=ENV_FILE)
    parser.add_argument(
        "--shared-file",
        type=Path,
        default=None,
        help=f"the URLs every checkout of this user shares (default {SHARED_ENV_FILE} with the repository's own "
        "--env-file, none with another)",
    )
    parser.add_argument("--pg-host", default=env.get("SPAWNPOINT_PG_HOST", "127.0.0.1"))
    parser.add_argument("--pg-port", type=int, default=int(env.get("SPAWNPOINT_PG_PORT", "5432")))
    parser.add_argument("--amqp-host", default=env.get("SPAWNPOINT_AMQP_HOST", "127.0.0.1"))
    parser.add_argument("--amqp-port", type=int, default=int(env.get("SPAWNPOINT_AMQP_PORT", "5672")))
    parser.add_argument("--rabbitmq-node", default=env.get("RABBITMQ_NODENAME"), help="rabbitmqctl -n")
    parser.add_argument(
        "--no-install",
        action="store_true",
        default=env.get("SPAWNPOINT_NO_INSTALL") == "1",
        help="never install packages: print the commands instead (also SPAWNPOINT_NO_INSTALL=1)",
    )
    args = parser.parse_args(argv)
    target = Target(
        pg_host=args.pg_host,
        pg_port=args.pg_port,
        amqp_host=args.amqp_host,
        amqp_port=args.amqp_port,
        rabbit_node=args.rabbitmq_node,
        env_file=args.env_file,
        shared_file=args.shared_file or (SHARED_ENV_FILE if args.env_file == ENV_FILE else None),
        install=not args.no_install,
    )
    try:
        setup(target)
    except SetupError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        for command in exc.commands:
            print(f"    {command}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
