"""The alert rules and the dashboard: promtool checks the rules and runs their unit tests (it must be
installed: without it these tests fail, never skip), every alert is tested firing and not firing and points
at a section of the operations guide, and every metric the rules, their tests and the dashboard use is one
the code defines."""

from __future__ import annotations

import re
import subprocess

import pytest
import yaml

from .monitoring_support import (
    DASHBOARD,
    EXTERNAL,
    OPERATIONS,
    RULE_TESTS,
    RULES,
    alert_rules,
    dashboard,
    dashboard_exprs,
    dashboard_panels,
    defined_metrics,
    exposed_names,
    metric_names,
    require_tool,
)

pytestmark = pytest.mark.unit


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([require_tool("promtool"), *args], capture_output=True, text=True, timeout=60, check=False)


def test_promtool_accepts_the_rules() -> None:
    result = _promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in result.stdout


def test_the_rule_unit_tests_pass() -> None:
    result = _promtool("test", "rules", str(RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_is_tested_firing_and_not_firing() -> None:
    cases = [case for test in yaml.safe_load(RULE_TESTS.read_text())["tests"] for case in test["alert_rule_test"]]
    for rule in alert_rules():
        mine = [case for case in cases if case["alertname"] == rule["alert"]]
        assert any(case["exp_alerts"] for case in mine), f"{rule['alert']} is never tested firing"
        assert any(not case["exp_alerts"] for case in mine), f"{rule['alert']} is never tested not firing"


def _anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation other than ``-`` and ``_`` dropped, spaces to ``-``."""
    headings = re.findall(r"^#{1,6} (.+)$", markdown, flags=re.MULTILINE)
    return {re.sub(r"[^a-z0-9 _-]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def test_every_alert_says_what_it_means_and_where_the_runbook_is() -> None:
    guide = OPERATIONS.read_text()
    anchors = _anchors(guide)
    section = guide.split("## Alerts and dashboards", 1)[-1]
    assert "alerts-and-dashboards" in anchors
    names = [rule["alert"] for rule in alert_rules()]
    assert len(names) == len(set(names))
    for rule in alert_rules():
        annotations = rule["annotations"]
        assert annotations.get("summary") and annotations.get("description"), rule["alert"]
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        page, _, anchor = annotations["runbook"].partition("#")
        assert page == "docs/operations.md" and anchor in anchors, f"{rule['alert']}: {annotations['runbook']}"
        assert f"`{rule['alert']}`" in section, f"{rule['alert']} is not explained in docs/operations.md"


def test_the_source_scan_finds_the_metrics() -> None:
    """The name check below is only as good as this scan: it must find the metrics of every service and the kit."""
    found = defined_metrics()
    for name in (
        "dead_letter_queue_depth",
        "outbox_oldest_unpublished_age_seconds",
        "http_request_duration_seconds",
        "payment_rentals",
        "provisioner_drift_servers",
        "status_projection_lag_seconds",
    ):
        assert name in found
    assert len(found) >= 40


def test_every_metric_used_is_one_the_code_defines() -> None:
    known = exposed_names() | set(EXTERNAL)
    uses: dict[str, set[str]] = {}
    for rule in alert_rules():
        uses[f"alerts.yml {rule['alert']}"] = metric_names(rule["expr"])
    for test in yaml.safe_load(RULE_TESTS.read_text())["tests"]:
        for series in test["input_series"]:
            uses[f"alerts_test.yml {series['series']}"] = metric_names(series["series"])
    for expr in dashboard_exprs():
        uses[f"spawnpoint.json {expr}"] = metric_names(expr)
    for where, names in uses.items():
        assert names, f"no metric found in {where}"
        assert names <= known, f"{where}: not defined anywhere: {sorted(names - known)}"
    bare_histograms = {n for n, kind in defined_metrics().items() if kind == "Histogram"}
    assert not set().union(*uses.values()) & bare_histograms, "a histogram is used without _bucket/_count/_sum"


def test_the_dashboard_takes_its_datasource_from_a_variable() -> None:
    board = dashboard()
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    panels = dashboard_panels()
    assert len({p["id"] for p in board["panels"]}) == len(board["panels"])
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]
    assert "${datasource}" not in DASHBOARD.read_text().replace('"uid": "${datasource}"', "")


def test_the_dashboard_shows_what_on_call_needs() -> None:
    used = set().union(*(metric_names(expr) for expr in dashboard_exprs()))
    exprs = "\n".join(dashboard_exprs())
    for name in (
        "outbox_published_total",  # orders per stage
        "dead_letter_queue_depth",  # queue depths
        "outbox_backlog",
        "rabbitmq_queue_messages_ready",
        "provisioner_panel_request_seconds_count",  # panel calls and errors
        "payment_rentals",  # rentals by phase
        "payment_mrr_minor_units",
    ):
        assert name in used, name
    histograms = [n for n, kind in defined_metrics().items() if kind == "Histogram"]
    for name in histograms:  # latency per hop, wherever a histogram exists (the rate gate's wait is no hop)
        if name != "provisioner_panel_rate_limit_wait_seconds":
            assert f"rate({name}_bucket[" in exprs, f"no latency panel for {name}"
