"""``spawnctl drift``: every server Spawnpoint and the panel disagree about, and putting right what
convergence can.

It asks the provisioner's operator API for one run (``POST /operator/drift?fix=&dry_run=``): the
provisioner pages through the panel's servers, compares them with its records, confirms each finding with
fresh reads and answers with the report, printed here as a table (or the API's JSON with ``--json``).

- ``spawnctl drift``: report only, nothing changes;
- ``spawnctl drift --dry-run``: what ``--fix`` would do (``would_converge``), nothing changes;
- ``spawnctl drift --fix``: the kinds whose default is to converge (``suspended_by_hand``,
  ``unsuspended_by_hand``, ``limits_differ``) are sent back to convergence (``converging``); the others
  (``deleted_on_panel``, ``vanished``, ``orphan``) are for a person and are only reported.

Exit codes: 0 nothing left for a person (no disagreement, or every one sent to convergence by ``--fix``),
1 disagreements to look at (or the token refused), 2 bad usage, 3 the provisioner unreachable or unable to
answer (the panel could not be listed). docs/operations.md has the guide.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import httpx
import typer
from rich import box
from rich.console import Console
from rich.table import Table

from .operator_http import EXIT_REFUSED, EXIT_UNREACHABLE, fail, operator_token, refusal, service_url

out = Console()
err = Console(stderr=True)

NEXT_STEP = {
    "suspended_by_hand": "spawnctl drift --fix (convergence unsuspends it)",
    "unsuspended_by_hand": "spawnctl drift --fix (convergence suspends it)",
    "limits_differ": "spawnctl drift --fix (convergence applies the plan's build)",
    "deleted_on_panel": "a person decides: refund the order, or recreate the server by hand (never automatic)",
    "vanished": "the install watcher fails the order at its next check (ProvisionFailed, then the refund)",
    "orphan": "find out whose it is; delete it on the panel by hand once nobody uses it (never automatic)",
}
"""What an operator does next, per kind (docs/operations.md, "Drift")."""


def run_drift(base_url: str, token: str, *, fix: bool, dry_run: bool, timeout: float) -> httpx.Response:
    """One run on the provisioner (raises ``httpx.TransportError`` when it is unreachable)."""
    with httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout) as client:
        return client.post(
            "/operator/drift",
            params={"fix": str(fix).lower(), "dry_run": str(dry_run).lower()},
            headers={"Authorization": f"Bearer {token}"},
        )


def drift(
    fix: Annotated[
        bool, typer.Option("--fix", help="Send the converge kinds back to convergence (the others are reported).")
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what --fix would do; change nothing.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the provisioner's report as JSON.")] = False,
    url: Annotated[
        str | None, typer.Option("--url", help="The provisioner's base URL (default: PROVISIONER_URL or :8003).")
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            "--token", envvar="SPAWNCTL_TOKEN", help="Operator bearer token (default: minted from JWT_SECRET)"
        ),
    ] = None,
    timeout: Annotated[
        float, typer.Option(min=1.0, help="Seconds to wait for the run (it lists every server on the panel).")
    ] = 300.0,
) -> None:
    """Find every server Spawnpoint and the panel disagree about (suspended or resized by hand, deleted,
    orphaned); with --fix, let convergence put right what it can."""
    base = url or service_url("provisioner")
    try:
        with err.status(f"asking the provisioner at {base} to compare its records with the panel...", spinner="dots"):
            response = run_drift(base, operator_token(token), fix=fix, dry_run=dry_run, timeout=timeout)
    except httpx.TransportError as exc:
        message = f"the provisioner at {base} is unreachable ({type(exc).__name__}: {exc}). Check PROVISIONER_URL."
        raise fail(err, message, EXIT_UNREACHABLE) from exc
    refused = refusal("provisioner", response)
    if refused is not None:
        raise fail(err, *refused)
    report: dict[str, Any] = response.json()
    if as_json:
        typer.echo(json.dumps(report, indent=2, sort_keys=True))
    else:
        render(out, report)
    if any(f["done"] != "converging" for f in report["findings"]):
        raise typer.Exit(EXIT_REFUSED)


def render(console: Console, report: dict[str, Any]) -> None:
    findings: list[dict[str, Any]] = report["findings"]
    mode = "dry run: " if report["dry_run"] else ("fix: " if report["fix"] else "")
    seen = (
        f"{report['servers_seen']} server(s) on the panel ({report['pages']} page(s)), {report['orders_seen']} "
        f"order(s) here; {report['foreign']} not ours (null or non-UUID external id), "
        f"{report['installing']} still installing (left alone)"
    )
    if not findings:
        console.print(f"[green]{mode}no disagreement[/] between Spawnpoint and the panel. {seen}.")
        return
    table = Table(
        title=f"{mode}{len(findings)} disagreement(s) between Spawnpoint and the panel",
        title_justify="left",
        header_style="bold",
        box=box.SIMPLE_HEAD,
    )
    table.add_column("kind", no_wrap=True)
    table.add_column("order", no_wrap=True, min_width=36)
    table.add_column("server", justify="right", no_wrap=True)
    table.add_column("what differs", overflow="fold", ratio=1)
    table.add_column("default", no_wrap=True)
    table.add_column("done", no_wrap=True)
    styles = {"converging": "green", "would_converge": "cyan", "changed_meanwhile": "yellow", "reported": "red"}
    for finding in findings:
        table.add_row(
            finding["kind"],
            finding["order_id"] or "-",
            f"#{finding['server_id']}" if finding["server_id"] is not None else "-",
            finding["detail"],
            finding["default_action"],
            f"[{styles.get(finding['done'], 'white')}]{finding['done']}[/]",
        )
    console.print(table)
    counts = ", ".join(f"{n} {kind}" for kind, n in report["counts"].items() if n)
    console.print(f"{counts}. {seen}.")
    kinds = sorted({f["kind"] for f in findings if f["done"] != "converging"})
    for kind in kinds:
        console.print(f"  [bold]{kind}[/]: {NEXT_STEP.get(kind, 'see docs/operations.md')}")
    if report["dry_run"]:
        console.print("Dry run: nothing was changed.")
    elif not report["fix"] and any(f["default_action"] == "converge" for f in findings):
        console.print("Run [bold]spawnctl drift --fix[/] to converge the ones whose default is converge.")
