"""What the monitoring checks share: where the alert rules and the dashboard are, the metric names the code
defines (read from the source, so a renamed metric breaks the check), and the names a PromQL expression uses."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "alerts_test.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "spawnpoint.json"
OPERATIONS = ROOT / "docs" / "operations.md"
SOURCES = [*sorted((ROOT / "services").glob("*/src")), ROOT / "shared" / "kit" / "src"]

PREFIXES = (
    "http_request",
    "messages_",
    "message_handle",
    "consumer_batch",
    "outbox_",
    "dead_letter_",
    "payment_",
    "provisioner_",
    "status_",
    "rabbitmq_",
)
"""Identifiers starting like this are metric names (ours, or the broker's)."""

EXTERNAL = {
    "rabbitmq_queue_consumers": "RabbitMQ's rabbitmq_prometheus plugin, per-object metrics",
    "rabbitmq_queue_messages_ready": "RabbitMQ's rabbitmq_prometheus plugin, per-object metrics",
    "up": "Prometheus itself: 1 when a scrape target answered, 0 when it did not",
}
"""Metrics no service defines: nothing in Spawnpoint reports a queue's consumers or depth, the broker does, and
Prometheus records whether each target answered."""

INSTALL_HINT = (
    "is not installed: the alert rules cannot be checked. Install Debian's `prometheus` package "
    "(`sudo apt-get install -y prometheus`; `make test` does it when it can: scripts/ensure-tools.sh)."
)

_DEFINITION = re.compile(r"\b(Counter|Gauge|Histogram|Summary)\(\s*\"([a-zA-Z_:][a-zA-Z0-9_:]*)\"")


def require_tool(name: str) -> str:
    """The tool's path; fails (never skips) without it, so CI cannot pass without checking the rules."""
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} {INSTALL_HINT}", pytrace=False)
    return found


def defined_metrics() -> dict[str, str]:
    """Every prometheus_client metric the services and the kit define, by name, with its kind."""
    found: dict[str, str] = {}
    for source in SOURCES:
        for path in source.rglob("*.py"):
            for kind, name in _DEFINITION.findall(path.read_text()):
                found[name] = kind
    return found


def exposed_names() -> set[str]:
    """The sample names the definitions put on /metrics (a counter's ``_total``, a histogram's series)."""
    names: set[str] = set()
    for name, kind in defined_metrics().items():
        if kind == "Counter":
            base = name.removesuffix("_total")
            names |= {f"{base}_total", f"{base}_created"}
        elif kind == "Gauge":
            names.add(name)
        elif kind == "Histogram":
            names |= {f"{name}_bucket", f"{name}_count", f"{name}_sum", f"{name}_created"}
        else:
            names |= {f"{name}_count", f"{name}_sum", f"{name}_created", name}
    return names


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression (or a series selector) uses, roughly: strings, label matchers and
    grouping clauses are removed, then every identifier with one of our prefixes, or one of the ``EXTERNAL`` names
    (``up``), is a metric name."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    return {t for t in re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", text) if t.startswith(PREFIXES) or t in EXTERNAL}


def alert_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(RULES.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def dashboard_panels() -> list[dict[str, Any]]:
    panels: list[dict[str, Any]] = []
    for panel in dashboard()["panels"]:
        panels.append(panel)
        panels.extend(panel.get("panels", []))
    return [p for p in panels if p["type"] != "row"]


def dashboard_exprs() -> list[str]:
    return [target["expr"] for panel in dashboard_panels() for target in panel["targets"]]
