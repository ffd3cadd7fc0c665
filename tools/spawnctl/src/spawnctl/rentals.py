"""``spawnctl rental``: one order's rental as payment-service has it, and the reconciler run on demand.

- ``spawnctl rental show ORDER_ID``: payment-service's operator API (``GET /operator/rentals/{id}``): the
  phase, what is paid for and until when, the deadlines, the server state the rental asks for, the next
  deadline, the subscription's invoices as Stripe has them now, and every move of the rental with its cause
  and what noticed it (webhook, reconciler, deadline, customer).
- ``spawnctl rental reconcile [--dry-run] [--order ORDER_ID]``: ``POST /operator/rentals/reconcile``: read
  every subscription (or one) from Stripe now and bring the rental in step (``via=reconciler``); with
  ``--dry-run`` only report what would change. Changes found mean Stripe's webhooks were lost.

Both print tables, or the API's JSON with ``--json``. It talks HTTP only; the operator token comes from
``--token`` / ``SPAWNCTL_TOKEN``, or is minted from ``JWT_SECRET`` for five minutes. Exit codes: 0 shown
or done, 1 not found, refused, or (reconcile) some rental could not be read from Stripe, 3 payment-service
unreachable or unable to answer (5xx).
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Annotated, Any

import httpx
import typer
from rich import box
from rich.console import Console
from rich.table import Table

from .operator_http import EXIT_REFUSED, EXIT_UNREACHABLE, SERVICE_URLS, fail, operator_token, refusal

app = typer.Typer(help="Rentals: one order's rental and invoices, and the reconciler on demand.", no_args_is_help=True)

SERVICE = "payment-service"
UrlOption = Annotated[str, typer.Option("--url", envvar=SERVICE_URLS[SERVICE][0], help="payment-service base URL")]
TokenOption = Annotated[
    str | None,
    typer.Option("--token", envvar="SPAWNCTL_TOKEN", help="Operator bearer token (default: minted from JWT_SECRET)"),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the API's JSON instead of tables")]


def call(
    base_url: str, method: str, path: str, token: str, *, body: dict[str, Any] | None = None, timeout: float = 10.0
) -> httpx.Response:
    """One request to payment-service's operator API (raises ``httpx.TransportError`` when unreachable)."""
    with httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout) as client:
        return client.request(method, path, headers={"Authorization": f"Bearer {token}"}, json=body)


def _ask(
    errors: Console, url: str, method: str, path: str, token: str | None, what: str, timeout: float, **kw: Any
) -> dict[str, Any]:
    try:
        with errors.status(f"asking {url} for {what}...", spinner="dots"):
            response = call(url, method, path, operator_token(token), timeout=timeout, **kw)
    except httpx.TransportError as exc:
        message = f"payment-service at {url} is unreachable ({exc.__class__.__name__}: {exc})"
        raise fail(errors, message, EXIT_UNREACHABLE) from exc
    if response.status_code == 404:
        raise fail(errors, "no rental for this order: payment-service has no payment or rental for it", EXIT_REFUSED)
    refused = refusal(SERVICE, response)
    if refused is not None:
        raise fail(errors, *refused)
    body: dict[str, Any] = response.json()
    return body


@app.command()
def show(
    order_id: Annotated[uuid.UUID, typer.Argument(help="The order's id (a UUID)")],
    as_json: JsonOption = False,
    url: UrlOption = SERVICE_URLS[SERVICE][1],
    token: TokenOption = None,
    timeout: Annotated[float, typer.Option(min=0.1, help="Seconds to wait for payment-service")] = 15.0,
) -> None:
    """Show one rental: its state, what is paid for, the next deadline, the invoices and its history."""
    errors = Console(stderr=True)
    body = _ask(errors, url, "GET", f"/operator/rentals/{order_id}", token, f"the rental of {order_id}", timeout)
    if as_json:
        typer.echo(json.dumps(body, indent=2))
        return
    render_rental(Console(), body)


@app.command()
def reconcile(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only report what would change; write nothing")] = False,
    order: Annotated[uuid.UUID | None, typer.Option("--order", help="One order (default: every subscription)")] = None,
    as_json: JsonOption = False,
    url: UrlOption = SERVICE_URLS[SERVICE][1],
    token: TokenOption = None,
    timeout: Annotated[float, typer.Option(min=0.1, help="Seconds to wait for payment-service")] = 120.0,
) -> None:
    """Read the subscriptions from Stripe now and bring the rentals in step (what the reconciler does hourly)."""
    errors = Console(stderr=True)
    request: dict[str, Any] = {"dry_run": dry_run, "order_id": str(order) if order else None}
    what = f"the rental of {order}" if order else "every subscription rental"
    body = _ask(errors, url, "POST", "/operator/rentals/reconcile", token, what, timeout, body=request)
    if as_json:
        typer.echo(json.dumps(body, indent=2))
    else:
        render_report(Console(), body)
    if body["failed"]:
        raise typer.Exit(EXIT_REFUSED)


def _time(value: str | None) -> str:
    if not value:
        return "-"
    return datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%M:%S")


def _money(amount: int | None, currency: str | None) -> str:
    if amount is None:
        return "-"
    return f"{amount / 100:.2f} {(currency or '').upper()}".strip()


def _table(title: str, *columns: str) -> Table:
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, header_style="bold")
    for column in columns:
        table.add_column(column)
    return table


def render_rental(console: Console, rental: dict[str, Any]) -> None:
    """The rental as a state table, the invoices and the history."""
    console.print(
        f"[bold]Rental of order {rental['order_id']}[/]  ({rental['kind']}, {rental['plan_id']} / "
        f"{rental['period_id']}, {_money(rental['amount'], rental['currency'])})  customer: {rental['user_id']}"
    )
    deadline = rental.get("next_deadline")
    state = _table("State", "field", "value")
    for field, value in (
        ("phase", f"[bold]{rental['phase']}[/] (version {rental['version']})"),
        ("paid through", _time(rental["paid_through"])),
        ("renews at", _time(rental["renews_at"])),
        ("ends at", _time(rental["ends_at"])),
        ("next payment attempt", _time(rental["next_payment_attempt"])),
        ("attempts", str(rental["attempt_count"])),
        ("grace until", _time(rental["grace_until"])),
        ("terminate at", _time(rental["terminate_at"])),
        ("hold", rental["hold"] or "-"),
        ("server should be", f"{rental['desired_state'] or '-'} (version {rental['desired_version']})"),
        ("next deadline", f"{deadline['due_kind']} at {_time(deadline['due_at'])}" if deadline else "-"),
        ("subscription", rental["subscription_id"] or "-"),
        ("Stripe customer", rental["customer_id"] or "-"),
        ("latest invoice", rental["invoice_id"] or "-"),
        ("read from Stripe", _time(rental["synced_at"])),
    ):
        state.add_row(field, value)
    console.print(state)

    invoices = rental.get("invoices")
    if invoices is None:
        reason = rental.get("invoices_error") or "no subscription (yet)"
        console.print(f"[yellow]Invoices: not shown ({reason})[/]")
    else:
        table = _table("Invoices (live from Stripe, newest first)", "invoice", "status", "reason", "due", "paid")
        table.add_column("attempts", justify="right")
        table.add_column("created")
        for invoice in invoices:
            table.add_row(
                invoice["id"],
                invoice["status"],
                invoice["billing_reason"] or "-",
                _money(invoice["amount_due"], invoice["currency"]),
                _money(invoice["amount_paid"], invoice["currency"]),
                str(invoice["attempt_count"]),
                _time(invoice["created"]),
            )
        console.print(table)

    history = _table("History (every move, oldest first)", "version", "at", "from", "to", "cause", "via", "invoice")
    history.add_column("stripe event")
    for move in rental["history"]:
        history.add_row(
            str(move["version"]),
            _time(move["at"]),
            move["from_phase"],
            move["to_phase"],
            move["cause"],
            move["via"],
            move["invoice_id"] or "-",
            move["stripe_event_id"] or "-",
        )
    console.print(history)


def render_report(console: Console, report: dict[str, Any]) -> None:
    """The reconciler's report: one row per rental looked at, the changed ones first."""
    title = "Dry run: what the reconciler would change (nothing written)" if report["dry_run"] else "Reconciled"
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, header_style="bold")
    table.add_column("order", no_wrap=True, min_width=36)
    for column in ("subscription", "before", "after", "causes", "paid through", "outcome"):
        table.add_column(column)
    results = sorted(report["results"], key=lambda r: r["outcome"] != "changed")
    for result in results:
        paid = _time(result["paid_through_before"])
        if result["paid_through_after"] != result["paid_through_before"]:
            paid = f"{paid} -> {_time(result['paid_through_after'])}"
        outcome = result["outcome"] + (f": {result['error']}" if result.get("error") else "")
        style = "yellow" if result["outcome"] == "changed" else "red" if result["outcome"] == "error" else None
        table.add_row(
            result["order_id"],
            result["subscription_id"] or "-",
            result["before"],
            result["after"],
            ", ".join(result["causes"]) or "-",
            paid,
            outcome,
            style=style,
        )
    console.print(table)
    verb = "would change" if report["dry_run"] else "changed"
    console.print(
        f"{report['checked']} rental(s) read from Stripe, {report['changed']} {verb}, {report['failed']} failed."
        + (" More rentals than the limit: run again." if report["truncated"] else "")
    )
    if report["changed"] and not report["dry_run"]:
        console.print("[yellow]Changes found mean Stripe webhooks were lost: check the webhook endpoint.[/]")
