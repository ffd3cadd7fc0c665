"""``spawnctl rental show|reconcile`` against a stand-in for payment-service's operator API (an in-process
HTTP handler): the requests they send, the tables and JSON they print, and their exit codes."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from spawnctl.cli import app

pytestmark = pytest.mark.unit

ORDER = "5f0c2a7e-1b3d-4c8e-9f21-7a6b5c4d3e21"

RENTAL: dict[str, Any] = {
    "order_id": ORDER,
    "user_id": "user-alice",
    "kind": "subscription",
    "plan_id": "standard",
    "period_id": "monthly",
    "phase": "active",
    "version": 3,
    "amount": 1500,
    "currency": "eur",
    "subscription_id": "sub_123",
    "customer_id": "cus_9",
    "invoice_id": "in_2",
    "paid_through": "2027-02-02T12:00:00+00:00",
    "renews_at": "2027-02-02T12:00:00+00:00",
    "ends_at": None,
    "next_payment_attempt": None,
    "attempt_count": 0,
    "grace_until": None,
    "terminate_at": None,
    "warned_at": None,
    "hold": None,
    "desired_state": "running",
    "desired_version": 1,
    "next_deadline": None,
    "synced_at": "2027-01-02T13:00:00+00:00",
    "created_at": "2026-12-02T12:00:00+00:00",
    "updated_at": "2027-01-02T13:00:00+00:00",
    "history": [
        {
            "version": 1,
            "from_phase": "awaiting_payment",
            "to_phase": "active",
            "cause": "activated",
            "via": "webhook",
            "invoice_id": "in_1",
            "stripe_event_id": "evt_1",
            "at": "2026-12-02T12:00:01+00:00",
        },
        {
            "version": 3,
            "from_phase": "active",
            "to_phase": "active",
            "cause": "renewed",
            "via": "reconciler",
            "invoice_id": "in_2",
            "stripe_event_id": None,
            "at": "2027-01-02T13:00:00+00:00",
        },
    ],
    "invoices": [
        {
            "id": "in_2",
            "status": "paid",
            "billing_reason": "subscription_cycle",
            "amount_due": 1500,
            "amount_paid": 1500,
            "currency": "eur",
            "attempt_count": 1,
            "created": "2027-01-02T12:00:00+00:00",
        },
        {
            "id": "in_1",
            "status": "paid",
            "billing_reason": "subscription_create",
            "amount_due": 1500,
            "amount_paid": 1500,
            "currency": "eur",
            "attempt_count": 1,
            "created": "2026-12-02T12:00:00+00:00",
        },
    ],
    "invoices_error": None,
}


def _report(*results: dict[str, Any], dry_run: bool) -> dict[str, Any]:
    return {
        "dry_run": dry_run,
        "checked": len(results),
        "changed": sum(r["outcome"] == "changed" for r in results),
        "failed": sum(r["outcome"] == "error" for r in results),
        "truncated": False,
        "results": list(results),
    }


def _result(
    outcome: str = "changed", causes: tuple[str, ...] = ("renewed",), error: str | None = None
) -> dict[str, Any]:
    return {
        "order_id": ORDER,
        "subscription_id": "sub_123",
        "before": "active",
        "after": "active",
        "causes": list(causes),
        "outcome": outcome,
        "paid_through_before": "2027-01-02T12:00:00+00:00",
        "paid_through_after": "2027-02-02T12:00:00+00:00" if causes else "2027-01-02T12:00:00+00:00",
        "error": error,
    }


class PaymentService:
    """Answers every request with ``answer`` and keeps what it was asked."""

    def __init__(self) -> None:
        self.answer: tuple[int, Any] = (200, RENTAL)
        self.seen: list[httpx.Request] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        return httpx.Response(self.answer[0], json=self.answer[1])


@pytest.fixture
def payment_service(monkeypatch: pytest.MonkeyPatch) -> PaymentService:
    fake = PaymentService()
    real_client = httpx.Client

    def client(**kwargs: Any) -> httpx.Client:
        return real_client(transport=httpx.MockTransport(fake.handle), **kwargs)

    monkeypatch.setattr(httpx, "Client", client)
    monkeypatch.setenv("PAYMENT_SERVICE_URL", "http://payment.test")
    return fake


def _run(*args: str) -> Any:
    return CliRunner().invoke(app, ["rental", *args], env={"COLUMNS": "200", "NO_COLOR": "1"})


def test_show_prints_the_state_the_invoices_and_the_history(payment_service: PaymentService) -> None:
    result = _run("show", ORDER)
    assert result.exit_code == 0, result.output
    (request,) = payment_service.seen
    assert request.method == "GET" and str(request.url) == f"http://payment.test/operator/rentals/{ORDER}"
    assert request.headers["authorization"].startswith("Bearer ")
    for text in ("active", "2027-02-02 12:00:00", "running (version 1)", "in_1", "in_2", "subscription_cycle"):
        assert text in result.output
    assert "15.00 EUR" in result.output and "reconciler" in result.output and "evt_1" in result.output


def test_show_json_is_the_apis_answer_and_a_url_option_overrides_the_environment(
    payment_service: PaymentService,
) -> None:
    result = _run("show", ORDER, "--json", "--url", "http://elsewhere.test/")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == RENTAL
    assert payment_service.seen[0].url.host == "elsewhere.test"


def test_show_says_why_the_invoices_are_missing(payment_service: PaymentService) -> None:
    payment_service.answer = (200, {**RENTAL, "invoices": None, "invoices_error": "Stripe did not list them"})
    result = _run("show", ORDER)
    assert result.exit_code == 0, result.output
    assert "Stripe did not list them" in result.output


def test_reconcile_dry_run_asks_for_a_dry_run_and_reports_what_would_change(payment_service: PaymentService) -> None:
    payment_service.answer = (200, _report(_result(), dry_run=True))
    result = _run("reconcile", "--dry-run", "--order", ORDER)
    assert result.exit_code == 0, result.output
    (request,) = payment_service.seen
    assert request.method == "POST" and request.url.path == "/operator/rentals/reconcile"
    assert json.loads(request.content) == {"dry_run": True, "order_id": ORDER}
    for text in ("Dry run", "nothing written", "renewed", "2027-01-02 12:00:00 -> 2027-02-02 12:00:00", "would change"):
        assert text in result.output


def test_reconcile_applies_every_rental_by_default_and_json_is_the_report(payment_service: PaymentService) -> None:
    body = _report(_result(), _result("unchanged", ()), dry_run=False)
    payment_service.answer = (200, body)
    result = _run("reconcile", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == body
    assert json.loads(payment_service.seen[0].content) == {"dry_run": False, "order_id": None}


def test_a_rental_stripe_could_not_be_read_for_is_shown_and_exits_1(payment_service: PaymentService) -> None:
    payment_service.answer = (200, _report(_result("error", (), "APIConnectionError: away"), dry_run=False))
    result = _run("reconcile")
    assert result.exit_code == 1
    assert "APIConnectionError: away" in result.output and "1 failed" in result.output


@pytest.mark.parametrize(
    ("status", "code", "text"),
    [(404, 1, "no rental for this order"), (403, 1, "refused the token"), (503, 3, "cannot answer now")],
)
def test_not_found_a_refusal_or_a_service_error_is_a_clear_error(
    payment_service: PaymentService, status: int, code: int, text: str
) -> None:
    payment_service.answer = (status, {"detail": "nope"})
    for args in (("show", ORDER), ("reconcile", "--order", ORDER)):
        result = _run(*args)
        assert result.exit_code == code, result.output
        assert text in result.output


def test_an_unreachable_payment_service_is_exit_3_naming_the_address(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYMENT_SERVICE_URL", "http://127.0.0.1:9")
    result = _run("show", ORDER)
    assert result.exit_code == 3
    assert "unreachable" in result.output and "127.0.0.1:9" in result.output
