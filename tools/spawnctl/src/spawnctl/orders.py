"""``spawnctl order``: an order's full event trail, for operators.

``spawnctl order trail ORDER_ID`` asks status-service's operator API (``GET /operator/orders/{id}/trail``)
for every event the order received: in causal order, with ids, producers, causation and correlation
ids, how often each was delivered, retries and replays, and every status the customer saw. It prints a
table, or the API's JSON with ``--json`` (for ``jq``).

It talks HTTP only (status-service owns the data; spawnctl never reads another service's database).
The operator token comes from ``--token`` / ``SPAWNCTL_TOKEN``, or is minted from ``JWT_SECRET`` for
five minutes. Exit codes: 0 shown, 1 not found or refused (no such order, not an operator token),
3 status-service unreachable or unable to answer (5xx).
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

from .operator_http import EXIT_REFUSED, EXIT_UNREACHABLE, SERVICE_URLS, fail, operator_token, refusal

app = typer.Typer(help="Orders: the full event trail of one order.", no_args_is_help=True)


def fetch_trail(base_url: str, order_id: uuid.UUID, token: str, *, timeout: float = 10.0) -> httpx.Response:
    """One GET of the operator trail (raises ``httpx.TransportError`` when status-service is unreachable)."""
    with httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout) as client:
        return client.get(f"/operator/orders/{order_id}/trail", headers={"Authorization": f"Bearer {token}"})


@app.command()
def trail(
    order_id: Annotated[uuid.UUID, typer.Argument(help="The order's id (a UUID)")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the API's JSON instead of tables")] = False,
    url: Annotated[
        str, typer.Option("--url", envvar="STATUS_SERVICE_URL", help="status-service base URL")
    ] = SERVICE_URLS["status-service"][1],
    token: Annotated[
        str | None,
        typer.Option(
            "--token", envvar="SPAWNCTL_TOKEN", help="Operator bearer token (default: minted from JWT_SECRET)"
        ),
    ] = None,
    timeout: Annotated[float, typer.Option(min=0.1, help="Seconds to wait for status-service")] = 10.0,
) -> None:
    """Show every event of one order: what happened, in causal order, with every id an operator needs."""
    console = Console()
    errors = Console(stderr=True)
    try:
        with errors.status(f"asking {url} for the trail of {order_id}...", spinner="dots"):
            response = fetch_trail(url, order_id, operator_token(token), timeout=timeout)
    except httpx.TransportError as exc:
        message = f"status-service at {url} is unreachable ({exc.__class__.__name__}: {exc})"
        raise fail(errors, message, EXIT_UNREACHABLE) from exc
    if response.status_code == 404:
        raise fail(errors, f"no order {order_id}: status-service has received no event for it", EXIT_REFUSED)
    refused = refusal("status-service", response)
    if refused is not None:
        raise fail(errors, *refused)
    body: dict[str, Any] = response.json()
    if as_json:
        typer.echo(json.dumps(body, indent=2))
        return
    render(console, body)


def _short(value: str | None) -> str:
    return value[:8] if value else "-"


def _time(value: str | None) -> str:
    if not value:
        return "-"
    moment = datetime.fromisoformat(value)
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def render(console: Console, trail: dict[str, Any]) -> None:
    """The trail as a summary, the events table and the customer-visible changes."""
    status = trail.get("status") or {}
    counts = trail["counts"]
    console.print(f"[bold]Order {trail['order_id']}[/]")
    if status:
        console.print(
            f"  now: [bold]{status['status']}[/] / {status['phase']}  (version {status['version']}, "
            f"since {_time(status['updated_at'])})  customer: {trail.get('user_id') or '-'}"
        )
        console.print(f"  says: {status['message']}")
    console.print(f"  correlation: {', '.join(trail['correlation_ids']) or '-'}")
    console.print(
        f"  {counts['events']} events, {counts['duplicate_deliveries']} duplicate deliveries, "
        f"{counts['retries']} retries, {counts['failures']} failures, {counts['replays']} replays, "
        f"{counts['refunds']} refunds"
    )

    events = Table(title="Events (causal order; times as each producer's clock recorded them)", expand=True)
    for column, options in (
        ("#", {"justify": "right"}),
        ("occurred", {"no_wrap": True}),
        ("event", {"no_wrap": True}),
        ("producer", {}),
        ("event id", {"no_wrap": True}),
        ("caused by", {"no_wrap": True}),
        ("recv", {"justify": "right"}),
        ("what", {"ratio": 1}),
    ):
        events.add_column(column, **options)
    for event in trail["events"]:
        cause = event.get("caused_by_position")
        caused_by = f"#{cause}" if cause else _short(event.get("causation_id"))
        deliveries = event["deliveries"]
        received = f"{event['arrival']}" + (f" [yellow]x{deliveries}[/]" if deliveries > 1 else "")
        style = "red" if event["event_type"] == "ProvisionFailed" else None
        events.add_row(
            str(event["position"]),
            _time(event["occurred_at"]),
            event["event_type"],
            event["producer"],
            _short(event["event_id"]),
            caused_by,
            received,
            event["summary"],
            style=style,
        )
    console.print(events)
    console.print("[dim]event ids are shortened; --json has them in full. recv: arrival rank, xN: delivered N times[/]")

    changes = Table(title="What the customer saw")
    for column in ("version", "status", "phase", "since", "committed", "message"):
        changes.add_column(column)
    for change in trail["changes"]:
        changes.add_row(
            str(change["version"]),
            change["status"],
            change["phase"],
            _time(change["updated_at"]),
            _time(change.get("changed_at")),
            change["message"],
        )
    console.print(changes)
