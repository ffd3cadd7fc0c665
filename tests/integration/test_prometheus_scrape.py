"""A real Prometheus (the machine's, Debian's package) scrapes the four services of a test stack: its own
process, port, configuration and data folder, never the packaged service on :9090. One series of each service
is queried through Prometheus's HTTP API, the alert rules load and evaluate without errors against the real
series, and every dashboard query is accepted by the real query engine."""

from __future__ import annotations

import functools
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from devstack import SERVICES, Stack, free_port
from tests.system.monitoring_support import INSTALL_HINT, RULES, alert_rules, dashboard_exprs

pytestmark = pytest.mark.integration

SERIES = {
    "order-service": "outbox_backlog",
    "payment-service": "payment_webhook_seconds_count",
    "provisioner": "provisioner_installs_in_progress",
    "status-service": "status_open_streams",
}
"""One series each service defines itself (present from start-up, before any traffic)."""

DEADLINE = 60.0


@dataclass
class Prometheus:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def get(self, path: str, **params: str) -> Any:
        answer = httpx.get(f"{self.url}{path}", params=params, timeout=5.0)
        answer.raise_for_status()
        body = answer.json()
        assert body["status"] == "success", body
        return body["data"]


def _query(prometheus: Prometheus, query: str) -> Any:
    return prometheus.get("/api/v1/query", query=query)["result"]


def _until(what: str, probe: Callable[[], Any], prometheus: Prometheus) -> Any:
    """Polls ``probe`` until it returns something truthy, to a deadline (never a fixed sleep)."""
    deadline = time.monotonic() + DEADLINE
    last: object = None
    while time.monotonic() < deadline:
        assert prometheus.process.poll() is None, f"prometheus exited: {prometheus.log.read_text()[-2000:]}"
        try:
            last = probe()
        except (httpx.HTTPError, AssertionError) as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(0.2)
    pytest.fail(f"{what} not seen within {DEADLINE:.0f}s; last: {last!r}")


@pytest.fixture(scope="module")
def prometheus(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail(f"prometheus {INSTALL_HINT}", pytrace=False)
    folder = tmp_path_factory.mktemp("prometheus")
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES)],
        "scrape_configs": [
            {
                "job_name": name,
                "metrics_path": "/metrics",
                "static_configs": [{"targets": [stack.config.url(name).removeprefix("http://")]}],
            }
            for name in SERVICES
        ],
    }
    (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    log = folder / "prometheus.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={folder / 'prometheus.yml'}",
                f"--storage.tsdb.path={folder / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Prometheus(f"http://127.0.0.1:{port}", process, log)
    try:
        _until("prometheus ready", lambda: httpx.get(f"{server.url}/-/ready", timeout=2.0).is_success, server)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def test_prometheus_scrapes_one_series_of_each_service(prometheus: Prometheus) -> None:
    started = time.monotonic()
    for job, metric in SERIES.items():
        selector = f'{metric}{{job="{job}"}}'
        result = _until(selector, functools.partial(_query, prometheus, selector), prometheus)
        assert result[0]["metric"]["__name__"] == metric
        assert result[0]["metric"]["job"] == job
    targets = prometheus.get("/api/v1/targets")["activeTargets"]
    assert {t["labels"]["job"]: t["health"] for t in targets} == dict.fromkeys(SERVICES, "up")
    print(f"one series of each of {len(SERIES)} services through Prometheus in {time.monotonic() - started:.1f}s")


def test_the_alert_rules_evaluate_against_the_real_series(prometheus: Prometheus) -> None:
    expected = {rule["alert"] for rule in alert_rules()}

    def evaluated() -> dict[str, str]:
        groups = prometheus.get("/api/v1/rules")["groups"]
        rules = {rule["name"]: rule for group in groups for rule in group["rules"]}
        if set(rules) != expected or any(r["health"] == "unknown" for r in rules.values()):
            return {}
        return {name: rule["health"] for name, rule in rules.items()}

    health = _until("every rule evaluated", evaluated, prometheus)
    assert health == dict.fromkeys(expected, "ok")


def test_the_real_query_engine_accepts_every_dashboard_query(prometheus: Prometheus) -> None:
    for expr in dashboard_exprs():
        query = expr.replace("$__rate_interval", "1m").replace("$__range", "5m")
        prometheus.get("/api/v1/query", query=query)  # status "success", or it raises
