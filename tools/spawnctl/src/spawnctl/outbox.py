"""``spawnctl outbox``: the outbox rows the relays parked, on every service, and putting them back in line.

A relay parks a row that failed *on its own* too often (unroutable, refused by the broker): a broker
outage never parks anything. Parked rows are counted (``outbox_parked_rows``); this is how an operator
sees them and, once the cause is fixed (a missing binding, say), retries them. It talks to each service's
operator API (``GET /operator/outbox``, ``POST /operator/outbox/{id}/retry``,
``POST /operator/outbox/retry-parked``), never to a database. Exit codes: 0 done, 1 refused or not found,
3 a service unreachable.
"""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any

import httpx
import typer
from rich import box
from rich.console import Console
from rich.table import Table

from .operator_http import EXIT_REFUSED, EXIT_UNREACHABLE, SERVICE_URLS, fail, operator_token, refusal, service_url

app = typer.Typer(help="Outbox rows the relays parked: list and retry them, on any service.", no_args_is_help=True)

out = Console()
err = Console(stderr=True)

ServiceOption = Annotated[
    str | None,
    typer.Option("--service", "-s", help=f"One of {', '.join(SERVICE_URLS)} (default: every service)."),
]
TokenOption = Annotated[
    str | None,
    typer.Option("--token", envvar="SPAWNCTL_TOKEN", help="Operator bearer token (default: minted from JWT_SECRET)"),
]


def _services(service: str | None) -> list[str]:
    if service is None:
        return list(SERVICE_URLS)
    if service not in SERVICE_URLS:
        err.print(f"[bold red]error:[/] unknown service {service!r}; one of {', '.join(SERVICE_URLS)}")
        raise typer.Exit(2)
    return [service]


def _call(service: str, method: str, path: str, token: str, **params: Any) -> httpx.Response:
    url = service_url(service)
    try:
        with httpx.Client(base_url=url, timeout=10.0) as client:
            response = client.request(method, path, headers={"Authorization": f"Bearer {token}"}, params=params)
    except httpx.TransportError as exc:
        raise fail(err, f"{service} at {url} is unreachable ({type(exc).__name__}: {exc})", EXIT_UNREACHABLE) from exc
    refused = refusal(service, response)
    if refused is not None and response.status_code != 404:
        raise fail(err, *refused)
    return response


@app.command("list")
def list_(
    service: ServiceOption = None,
    pending: Annotated[bool, typer.Option("--pending", help="Rows still waiting to be published, not parked.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table.")] = False,
    token: TokenOption = None,
) -> None:
    """List parked outbox rows (or, with --pending, the rows still waiting) on every service."""
    bearer = operator_token(token)
    state = "pending" if pending else "parked"
    rows: list[tuple[str, dict[str, Any]]] = []
    for name in _services(service):
        with err.status(f"asking {name}...", spinner="dots"):
            response = _call(name, "GET", "/operator/outbox", bearer, state=state)
        rows.extend((name, row) for row in response.json())
    if as_json:
        for name, row in rows:
            typer.echo(json.dumps({"service": name, **row}, sort_keys=True))
        return
    if not rows:
        out.print(f"[green]no {state} outbox rows[/] on {', '.join(_services(service))}.")
        return
    table = Table(title=f"{state} outbox rows", title_justify="left", box=box.SIMPLE_HEAD, header_style="bold")
    for column in ("service", "row id / order id", "type", "attempts", "since", "last error"):
        table.add_column(column, no_wrap=column != "last error")
    for name, row in rows:
        since = str(row.get("parked_at") or row.get("available_at") or "")[5:19].replace("T", " ")
        table.add_row(
            name,
            f"{row['id']}\n[dim]{row.get('order_id') or '-'}[/]",
            str(row["message_type"]),
            str(row["attempts"]),
            since,
            str(row.get("last_error") or "-")[:200],
        )
    out.print(table)
    out.print("Fix the cause, then [bold]spawnctl outbox retry ROW_ID --service SERVICE[/] (or --all-parked).")


@app.command()
def retry(
    row_id: Annotated[uuid.UUID | None, typer.Argument(help="The row to retry (from `spawnctl outbox list`).")] = None,
    service: ServiceOption = None,
    all_parked: Annotated[bool, typer.Option("--all-parked", help="Every parked row of the service(s).")] = False,
    token: TokenOption = None,
) -> None:
    """Put parked rows back in line: the relay publishes them at once."""
    if (row_id is None) == (not all_parked):
        err.print("[bold red]error:[/] give a ROW_ID (with --service) or --all-parked")
        raise typer.Exit(2)
    bearer = operator_token(token)
    if row_id is not None:
        if service is None:
            err.print("[bold red]error:[/] a ROW_ID needs --service (the service whose outbox holds it)")
            raise typer.Exit(2)
        response = _call(_services(service)[0], "POST", f"/operator/outbox/{row_id}/retry", bearer)
        if response.status_code == 404:
            raise fail(err, f"{service} has no unpublished outbox row {row_id}", EXIT_REFUSED)
        out.print(f"row {row_id} on {service} is back in line.")
        return
    total = 0
    for name in _services(service):
        total += int(_call(name, "POST", "/operator/outbox/retry-parked", bearer).json()["retried"])
    out.print(f"{total} parked row(s) back in line.")
