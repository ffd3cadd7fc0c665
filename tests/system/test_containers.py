"""The container artefacts, checked with what runs without a Docker engine (issue 15, item 1): the compose file
against the Compose Specification's JSON schema (vendored in deploy/schemas/), each container's effective
entrypoint + command resolved to a console script of its image's install and run in-process up to the server
start, a healthcheck and a non-root user per image, the install from the pinned resolution, the migrations
where the installed code looks for them, and the broker definitions complete."""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import subprocess
import tomllib
from pathlib import Path, PurePosixPath
from typing import Any

import jsonschema_rs
import pytest
import yaml

from spawnpoint_kit import tracing
from system_topology import ALL_QUEUES, RETRIED_QUEUES, retry_delays
from tests.system.deploy_support import (
    DOCKERFILE,
    ROOT,
    console_scripts,
    dockerfile_stages,
    effective_argv,
    final_stage,
    load_schema,
    start_in_process,
    workspace_members,
)

pytestmark = pytest.mark.unit

COMPOSE = ROOT / "docker-compose.yml"
DOCKERIGNORE = DOCKERFILE.with_name("Dockerfile.dockerignore")
DEFINITIONS = ROOT / "deploy" / "rabbitmq" / "definitions.json"
SERVICES = ("order-service", "payment-service", "provisioner", "status-service", "notification-service")
"""The programs with a database and the broker (``<service> serve``, migrations first)."""
STAND_INS = ("stripe-fake", "panel-fake", "mail-fake")


def compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(document, dict)
    return document


def built() -> dict[str, dict[str, Any]]:
    return {name: svc for name, svc in compose()["services"].items() if "build" in svc}


def image_of(service: dict[str, Any]) -> tuple[str, str | None]:
    """(the SERVICE build argument, the build target) of a compose service built from the Dockerfile."""
    build = service["build"]
    assert Path(build["dockerfile"]) == DOCKERFILE.relative_to(ROOT)
    args = build.get("args") or {}
    package = args.get("SERVICE") if isinstance(args, dict) else None
    assert package, "each image is built for one SERVICE"
    return str(package), build.get("target")


def test_the_compose_file_follows_the_compose_specification() -> None:
    validator = jsonschema_rs.Draft7Validator(load_schema("compose-spec.json"))
    errors = [f"{'/'.join(map(str, e.instance_path))}: {e.message}" for e in validator.iter_errors(compose())]
    assert not errors, errors


def test_docker_compose_config_accepts_the_file_where_a_client_has_compose() -> None:
    docker = shutil.which("docker")
    if docker is None or subprocess.run([docker, "compose", "version"], capture_output=True).returncode != 0:
        pytest.skip("no docker client with the compose plugin here")
    done = subprocess.run(
        [docker, "compose", "-f", str(COMPOSE), "config", "--quiet"], capture_output=True, text=True, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr


def test_every_spawnpoint_service_and_stand_in_is_built_from_the_dockerfile() -> None:
    assert set(built()) >= {*SERVICES, "storefront", *STAND_INS}


@pytest.mark.parametrize("name", sorted(built()))
def test_each_container_runs_a_console_script_of_its_image(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    service = built()[name]
    package, target = image_of(service)
    stage = final_stage(dockerfile_stages(), target)
    argv = effective_argv(stage, service.get("entrypoint"), service.get("command"))
    assert argv, f"{name}: the container has nothing to run"
    scripts = console_scripts(package)
    assert argv[0] in scripts, f"{name}: runs {argv[0]!r}, not a console script of {package} ({sorted(scripts)})"
    started = start_in_process(monkeypatch, scripts[argv[0]], argv)
    assert len(started.runs) == 1, f"{name}: {' '.join(argv)} does not start a server"
    run = started.runs[0]
    assert run["host"] == "0.0.0.0", f"{name}: listens on {run['host']}, unreachable from other containers"
    published = {int(str(p).rsplit(":", 1)[-1]) for p in service.get("ports", [])}
    if published:
        assert run["port"] in published, f"{name}: serves on {run['port']}, publishes {published}"


@pytest.mark.parametrize("name", sorted(built()))
def test_each_container_has_a_healthcheck_on_its_liveness_endpoint(name: str) -> None:
    service = built()[name]
    _, target = image_of(service)
    stage = final_stage(dockerfile_stages(), target)
    check = service.get("healthcheck")
    text = json.dumps(check["test"]) if check and "test" in check else (stage.healthcheck or "")
    assert text and "NONE" not in text.upper().split(), f"{name}: no healthcheck"
    assert re.search(r"/(healthz|_fake/health)\b", text), f"{name}: the healthcheck does not ask the liveness route"


@pytest.mark.parametrize("name", sorted(built()))
def test_each_image_runs_as_a_user_other_than_root(name: str) -> None:
    _, target = image_of(built()[name])
    user = final_stage(dockerfile_stages(), target).user
    assert user and user.split(":")[0] not in ("root", "0"), f"{name}: runs as {user or 'root'}"


def test_services_start_only_once_their_database_and_broker_are_healthy() -> None:
    services = compose()["services"]
    for name in SERVICES:
        depends = services[name].get("depends_on") or {}
        assert isinstance(depends, dict), name
        for needed in ("postgres", "rabbitmq"):
            assert depends.get(needed, {}).get("condition") == "service_healthy", (name, needed)


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    assert isinstance(env, dict), "environment as a mapping"
    return {str(k): str(v) for k, v in env.items()}


def _port_of(url: str) -> tuple[str, int]:
    match = re.fullmatch(r"https?://([a-z0-9.-]+):(\d+)(/.*)?", url)
    assert match, url
    return match[1], int(match[2])


def test_the_storefront_forwards_to_the_services_on_the_compose_network() -> None:
    """Its gateway calls the services by their compose names and ports; the browser loads Stripe.js and opens
    the panel from the host, so those two are the published ports on localhost."""
    services = compose()["services"]
    storefront = services["storefront"]
    env = _environment(storefront)
    for variable, name in (
        ("ORDER_SERVICE_URL", "order-service"),
        ("PAYMENT_SERVICE_URL", "payment-service"),
        ("STATUS_SERVICE_URL", "status-service"),
    ):
        host, port = _port_of(env[variable])
        assert host == name and f"{port}:{port}" in services[name]["ports"], (variable, env[variable])
        assert storefront["depends_on"][name]["condition"] == "service_healthy", name
    for variable, name in (("STRIPE_JS_URL", "stripe-fake"), ("STOREFRONT_PANEL_URL", "panel-fake")):
        host, port = _port_of(env[variable])
        assert host == "localhost" and f"{port}:{port}" in services[name]["ports"], (variable, env[variable])


def test_notification_service_sends_through_the_development_smtp_server() -> None:
    services = compose()["services"]
    notify = services["notification-service"]
    env = _environment(notify)
    assert env["SMTP_HOST"] == "mail-fake" and notify["depends_on"]["mail-fake"]["condition"] == "service_healthy"
    mail = services["mail-fake"]
    argv = effective_argv(
        final_stage(dockerfile_stages(), image_of(mail)[1]), mail.get("entrypoint"), mail.get("command")
    )
    assert argv[argv.index("--smtp-port") + 1] == env["SMTP_PORT"], argv
    assert argv[argv.index("--host") + 1] == "0.0.0.0", "SMTP must listen for the other containers"


def test_traces_are_off_unless_the_host_sets_an_endpoint() -> None:
    """Compose puts ``${OTEL_EXPORTER_OTLP_ENDPOINT:-}`` in every service's environment: empty when the host has
    none, which the kit must read as off (an empty endpoint is not a collector)."""
    for name in (*SERVICES, "storefront"):
        assert _environment(compose()["services"][name])["OTEL_EXPORTER_OTLP_ENDPOINT"] == (
            "${OTEL_EXPORTER_OTLP_ENDPOINT:-}"
        ), name
    assert not tracing.endpoint_configured({"OTEL_EXPORTER_OTLP_ENDPOINT": ""})
    assert tracing.endpoint_configured({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})


def test_the_image_installs_the_pinned_resolution() -> None:
    runs = " ".join(run for stage in dockerfile_stages().values() for run in stage.runs)
    sync = re.search(r"uv sync([^&;]*)", runs)
    assert sync, "the image installs with uv sync (the workspace's resolution), not uv pip install"
    flags = sync.group(1)
    assert re.search(r"--(locked|frozen)\b", flags), "uv sync without --locked/--frozen may re-resolve"
    assert "--no-dev" in flags and "--package" in flags, flags
    assert "uv pip install ./" not in runs


def test_every_third_party_package_of_the_lock_is_pinned_exactly() -> None:
    """uv.lock is not committed (it records download addresses): the image resolves it with ``uv lock``, which
    can only reproduce this machine's versions while every third-party package has an exact constraint."""
    lock_file = ROOT / "uv.lock"
    if not lock_file.exists():
        pytest.skip("no uv.lock yet (make install writes it)")
    lock = tomllib.loads(lock_file.read_text())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    pins = dict(c.split("==", 1) for c in project["tool"]["uv"]["constraint-dependencies"])
    pins = {re.sub(r"[-_.]+", "-", k).lower(): v for k, v in pins.items()}
    workspace = {m.name for m in workspace_members().values()} | {"spawnpoint"}
    loose = [
        f"{p['name']}=={p['version']} (pinned {pins.get(p['name'])})"
        for p in lock["package"]
        if p["name"] not in workspace and pins.get(p["name"]) != p["version"]
    ]
    assert not loose, f"add to [tool.uv] constraint-dependencies: {loose}"


def _ignored(relative: str, patterns: list[str]) -> bool:
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        parts = PurePosixPath(relative).parts
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch.fnmatch(p, pattern) for p in prefixes):
            ignored = not negate
    return ignored


@pytest.mark.parametrize("name", SERVICES)
def test_the_migrations_are_where_the_installed_service_looks(name: str) -> None:
    """``<service> migrate`` looks for ``alembic.ini`` at ``parents[3]`` of its ``entrypoints/cli.py``. The image
    installs the workspace members editable from /app/<member>/src, so that is /app/<member>/alembic.ini, and the
    build context must carry it and the migrations there."""
    member = workspace_members()[name]
    relative = member.path.relative_to(ROOT).as_posix()
    stages = dockerfile_stages()
    runs = " ".join(run for stage in stages.values() for run in stage.runs)
    assert "--no-editable" not in runs, "a non-editable install puts cli.py in site-packages, away from alembic.ini"
    text = DOCKERFILE.read_text()
    assert re.search(r"^WORKDIR /app$", text, re.M) and re.search(r"^COPY (--\S+ )*\. \.$", text, re.M)
    assert re.search(r"^COPY --from=build\S* /app /app$", text, re.M), "the runtime image keeps the /app layout"
    module = next((member.path / "src").iterdir()).name
    cli = PurePosixPath("/app", relative, "src", module, "entrypoints", "cli.py")
    assert (ROOT / relative / "src" / module / "entrypoints" / "cli.py").is_file()
    source = (ROOT / relative / "src" / module / "entrypoints" / "cli.py").read_text()
    assert 'parents[3] / "alembic.ini"' in source
    assert cli.parents[3] == PurePosixPath("/app", relative)
    patterns = [p.strip() for p in DOCKERIGNORE.read_text().splitlines() if p.strip() and not p.startswith("#")]
    for needed in ("alembic.ini", "migrations/env.py", "migrations/versions"):
        assert (ROOT / relative / needed).exists()
        assert not _ignored(f"{relative}/{needed}", patterns), f"{relative}/{needed} is left out of the image"
    assert _ignored(".venv", patterns) and _ignored(".git", patterns)


def test_the_broker_definitions_boot_an_empty_broker_with_everything_the_services_use() -> None:
    """Definitions loaded at boot replace RabbitMQ's default user and vhost: they must bring their own."""
    d = json.loads(DEFINITIONS.read_text())
    vhosts = {v["name"] for v in d["vhosts"]}
    users = {u["name"]: u for u in d["users"]}
    assert vhosts and users
    for user in users.values():
        assert user["password_hash"] and user["hashing_algorithm"] == "rabbit_password_hashing_sha256"
    granted = {(p["user"], p["vhost"]) for p in d["permissions"]}
    assert {(u, v) for u in users for v in vhosts} <= granted
    assert all(x["vhost"] in vhosts for key in ("exchanges", "queues", "bindings", "policies") for x in d[key])
    assert d["policies"], "no policy"
    queues = {q["name"]: q for q in d["queues"]}
    for spec in ALL_QUEUES:
        assert queues[spec.name]["arguments"]["x-queue-type"] == "quorum"
        assert f"{spec.name}.dlq" in queues
    assert RETRIED_QUEUES
    for spec in RETRIED_QUEUES:
        for delay in retry_delays():
            retry = queues[f"{spec.name}.retry.{delay}s"]
            assert retry["arguments"]["x-message-ttl"] == delay * 1000
            assert retry["arguments"]["x-dead-letter-routing-key"] == spec.name
