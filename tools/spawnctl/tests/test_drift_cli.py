"""``spawnctl drift`` against a stand-in for the provisioner's operator API (an in-process HTTP handler):
the request it sends, the table and JSON it prints, and its exit codes."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from spawnctl import drift as drift_module
from spawnctl.cli import app

pytestmark = pytest.mark.unit

ORDER = "0b6c1c9e-5d1f-4a51-9a8c-2f9d3b0e4a11"


def _report(*findings: dict[str, Any], fix: bool = False, dry_run: bool = False) -> dict[str, Any]:
    counts = dict.fromkeys(drift_module.NEXT_STEP, 0)
    for f in findings:
        counts[f["kind"]] += 1
    return {
        "trigger": "operator",
        "fix": fix,
        "dry_run": dry_run,
        "started_at": "2026-12-01T10:00:00+00:00",
        "finished_at": "2026-12-01T10:00:01+00:00",
        "pages": 1,
        "servers_seen": 3,
        "orders_seen": 2,
        "foreign": 1,
        "installing": 0,
        "unconfirmed": 0,
        "counts": counts,
        "findings": list(findings),
    }


def _finding(kind: str, done: str, action: str = "converge") -> dict[str, Any]:
    return {
        "kind": kind,
        "order_id": ORDER,
        "server_id": 12,
        "external_id": ORDER,
        "detail": "the panel shows suspended; desired running (version 1)",
        "default_action": action,
        "done": done,
    }


class Provisioner:
    """Answers every request with ``answer`` and keeps what it was asked."""

    def __init__(self) -> None:
        self.answer: tuple[int, Any] = (200, _report())
        self.seen: list[httpx.Request] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        return httpx.Response(self.answer[0], json=self.answer[1])


@pytest.fixture
def provisioner(monkeypatch: pytest.MonkeyPatch) -> Provisioner:
    fake = Provisioner()
    real_client = httpx.Client

    def client(**kwargs: Any) -> httpx.Client:
        return real_client(transport=httpx.MockTransport(fake.handle), **kwargs)

    monkeypatch.setattr(httpx, "Client", client)
    monkeypatch.setenv("PROVISIONER_URL", "http://provisioner.test")
    return fake


def _run(*args: str) -> Any:
    return CliRunner().invoke(app, ["drift", *args], env={"COLUMNS": "200", "NO_COLOR": "1"})


def test_a_clean_system_prints_so_and_exits_0(provisioner: Provisioner) -> None:
    provisioner.answer = (200, _report())
    result = _run()
    assert result.exit_code == 0, result.output
    assert "no disagreement" in result.output
    (request,) = provisioner.seen
    assert request.method == "POST" and request.url.path == "/operator/drift"
    assert request.url.params["fix"] == "false" and request.url.params["dry_run"] == "false"
    assert request.headers["authorization"].startswith("Bearer ")


def test_findings_are_a_table_with_the_default_and_what_was_done_and_exit_1(provisioner: Provisioner) -> None:
    findings = _finding("suspended_by_hand", "would_converge"), _finding("orphan", "reported", "report")
    provisioner.answer = (200, _report(*findings, dry_run=True))
    result = _run("--dry-run")
    assert result.exit_code == 1, result.output
    for text in ("suspended_by_hand", ORDER, "#12", "would_converge", "orphan", "reported", "Dry run"):
        assert text in result.output
    assert provisioner.seen[0].url.params["dry_run"] == "true"


def test_fix_that_sent_everything_to_convergence_exits_0_and_json_is_the_report(
    provisioner: Provisioner,
) -> None:
    body = _report(_finding("limits_differ", "converging"), fix=True)
    provisioner.answer = (200, body)
    result = _run("--fix", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == body
    assert provisioner.seen[0].url.params["fix"] == "true"


@pytest.mark.parametrize(("status", "code", "text"), [(403, 1, "refused the token"), (503, 3, "cannot answer now")])
def test_a_refusal_or_a_panel_that_cannot_be_listed_is_a_clear_error(
    provisioner: Provisioner, status: int, code: int, text: str
) -> None:
    provisioner.answer = (status, {"detail": "the panel could not be listed: unreachable"})
    result = _run()
    assert result.exit_code == code
    assert text in result.output


def test_an_unreachable_provisioner_is_exit_3_naming_the_address(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROVISIONER_URL", "http://127.0.0.1:9")
    result = _run()
    assert result.exit_code == 3
    assert "unreachable" in result.output and "127.0.0.1:9" in result.output
