"""``spawnctl dlq``: list, inspect, replay, purge and export dead-lettered messages.

A thin command line over ``spawnpoint_kit.messaging.dlq`` (where the broker work and its guarantees are
described). Reads ``BROKER_URL`` and ``SPAWNPOINT_NAMESPACE``; ``--queue`` is the work queue whose
dead-letter queue to open: any service's (``spawnctl dlq queues`` lists them with their depth), the
provisioner's by default. Exit codes: 0 done, 1 refused or failed (or
nothing matched), 2 bad usage, 3 broker unreachable. docs/provisioning.md is the operator's guide.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from aio_pika.abc import AbstractConnection
from rich import box
from rich.console import Console
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.syntax import Syntax
from rich.table import Table

from spawnpoint_kit.messaging.dlq import (
    BrokerUnreachable,
    DeadLetteredMessage,
    DeadLetterQueue,
    Outcome,
    QueueNotFound,
    ReplayReport,
    ReplayResult,
    connect,
    dlq_name,
    export_lines,
    select_by,
)
from spawnpoint_kit.messaging.headers import FORCE_DELETE
from spawnpoint_kit.settings import CommonSettings

from .system import ALL_QUEUES, DEFAULT_DLQ_QUEUE

app = typer.Typer(
    help="The dead-letter queues: list, show, replay, purge, export. See docs/provisioning.md.",
    no_args_is_help=True,
)

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3
LIST_LIMIT = 500
"""``list`` shows the first 500 unless told otherwise: a longer table is not read, and holding a whole
queue of messages in memory to draw it could take the operator's machine down (``export`` streams)."""
PROGRESS_FROM = 20
"""Replays that scan at least this many messages show a progress bar."""

out = Console()
err = Console(stderr=True)
T = TypeVar("T")

QueueOption = Annotated[
    str,
    typer.Option(
        "--queue",
        "-q",
        help="Work queue (or its .dlq) without the namespace prefix.",
        show_default=True,
    ),
]
EventIdOption = Annotated[str | None, typer.Option("--event-id", help="Only the message with this event id.")]
OrderIdOption = Annotated[str | None, typer.Option("--order-id", help="Only the messages of this order.")]
ReasonOption = Annotated[
    str | None, typer.Option("--reason", help="Only messages dead-lettered for this reason (e.g. no_capacity).")
]


def _queue_name(queue: str) -> str:
    namespace = CommonSettings().namespace
    return queue if not namespace or queue.startswith(namespace) else f"{namespace}{queue}"


def _run(work: Callable[[AbstractConnection], Awaitable[T]]) -> T:
    """Connect, run ``work``, close; broker and queue problems become clear messages and exit codes."""
    url = CommonSettings().broker_url.get_secret_value()
    for noisy in ("aio_pika", "aiormq"):  # their connection errors are reported below, once, plainly
        logging.getLogger(noisy).setLevel(logging.CRITICAL)

    async def main() -> T:
        connection = await connect(url)
        try:
            return await work(connection)
        finally:
            await connection.close()

    try:
        return asyncio.run(main())
    except BrokerUnreachable as exc:
        err.print(f"[bold red]error:[/] {exc}")
        err.print("Check BROKER_URL and that RabbitMQ is running (rabbitmq-diagnostics ping).")
        raise typer.Exit(EXIT_UNREACHABLE) from exc
    except QueueNotFound as exc:
        err.print(f"[bold red]error:[/] {exc}. Check --queue and SPAWNPOINT_NAMESPACE.")
        raise typer.Exit(EXIT_FAILED) from exc


def _when(value: object) -> str:
    """``2026-11-26T22:32:01.33+00:00`` -> ``11-26 22:32:01`` (UTC): short enough for a table."""
    text = str(value or "")
    return text[5:19].replace("T", " ") if len(text) >= 19 else "-"


def _id(value: str | None) -> str:
    return value or "-"


def _new_table(title: str) -> Table:
    return Table(
        title=title,
        title_justify="left",
        header_style="bold",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        padding=(0, 1, 0, 0),
    )


def _table(messages: list[DeadLetteredMessage], title: str) -> Table:
    table = _new_table(title)
    table.add_column("#", justify="right", no_wrap=True, min_width=1)
    # Whole ids, one above the other: the event id is what `show` and `replay --event-id` take.
    table.add_column("event id / order id", no_wrap=True, min_width=36)
    table.add_column("type", no_wrap=True, min_width=4)
    table.add_column("reason", no_wrap=True, min_width=6)
    table.add_column("deaths", justify="right", no_wrap=True)
    table.add_column("replays", justify="right", no_wrap=True)
    table.add_column("first failed", no_wrap=True)
    table.add_column("last failed", no_wrap=True)
    for m in messages:
        table.add_row(
            str(m.position),
            f"{_id(m.event_id)}\n[dim]{_id(m.order_id)}[/]",
            m.event_type or "-",
            m.reason,
            str(m.death_count),
            str(m.replay_count),
            _when(m.first_failed_at.isoformat() if m.first_failed_at else None),
            _when(m.last_failed_at.isoformat() if m.last_failed_at else None),
        )
    return table


@app.command("queues")
def queues(
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table.")] = False,
) -> None:
    """Every service's dead-letter queue and how many messages wait in it (start here)."""

    async def work(connection: AbstractConnection) -> list[tuple[str, str, int | None]]:
        rows: list[tuple[str, str, int | None]] = []
        for spec in ALL_QUEUES:
            try:
                depth: int | None = await DeadLetterQueue(connection, _queue_name(spec.name)).depth()
            except QueueNotFound:
                depth = None
            rows.append((spec.name, spec.description, depth))
        return rows

    rows = _run(work)
    if as_json:
        for name, description, depth in rows:
            typer.echo(json.dumps({"queue": name, "dlq": dlq_name(name), "depth": depth, "what": description}))
        return
    table = _new_table("dead-letter queues")
    for column in ("queue (--queue)", "waiting", "what it carries"):
        table.add_column(column, no_wrap=column != "what it carries")
    for name, description, depth in rows:
        shown = "[dim]not declared[/]" if depth is None else (f"[bold red]{depth}[/]" if depth else "0")
        table.add_row(name, shown, description)
    out.print(table)
    out.print("List one with [bold]spawnctl dlq list --queue QUEUE[/] (the provisioner's is the default).")
    if any(depth is None for _, _, depth in rows):
        out.print("[dim]not declared: that service has not started in this namespace yet.[/]")


@app.command("list")
def list_(
    queue: QueueOption = DEFAULT_DLQ_QUEUE,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="Show at most this many.")] = LIST_LIMIT,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table.")] = False,
) -> None:
    """List dead-lettered messages without consuming them."""

    async def work(connection: AbstractConnection) -> tuple[str, int, list[DeadLetteredMessage]]:
        dlq = DeadLetterQueue(connection, _queue_name(queue))
        return dlq.name, await dlq.depth(), await dlq.peek(limit=limit)

    name, depth, messages = _run(work)
    if as_json:
        for m in messages:
            typer.echo(json.dumps(m.summary(), sort_keys=True))
        return
    if not messages:
        out.print(f"[green]{name} is empty.[/]")
        return
    shown = f", first {len(messages)} (--limit N for more, or export)" if depth > len(messages) else ""
    out.print(_table(messages, f"{name}: {depth} message(s)" + shown))
    out.print("Inspect one with [bold]spawnctl dlq show EVENT_ID[/]; replay with [bold]spawnctl dlq replay --help[/].")


@app.command()
def show(
    event_id: Annotated[str, typer.Argument(help="The event id (or message id) of the message.")],
    queue: QueueOption = DEFAULT_DLQ_QUEUE,
    as_json: Annotated[bool, typer.Option("--json", help="The whole message as JSON.")] = False,
) -> None:
    """Show one message: properties, headers, x-death history and body."""

    async def work(connection: AbstractConnection) -> list[DeadLetteredMessage]:
        async with contextlib.aclosing(DeadLetterQueue(connection, _queue_name(queue)).scan()) as messages:
            async for m in messages:  # stops at the first match: the rest is never fetched
                if m.matches(event_id=event_id):
                    return [m]
        return []

    found = _run(work)
    if not found:
        err.print(f"[bold red]no dead-lettered message with event id {event_id}[/] in {_queue_name(queue)}.dlq")
        raise typer.Exit(EXIT_FAILED)
    message = found[0]
    if as_json:
        typer.echo(json.dumps(message.to_json(), indent=2, sort_keys=True, default=str))
        return
    facts = Table.grid(padding=(0, 2))
    for key, value in message.summary().items():
        facts.add_row(f"[bold]{key}[/]", str(value if value not in (None, "") else "-"))
    out.print(Panel(facts, title=f"dead letter {message.event_id}", title_align="left"))
    props = Table("property", "value", title="properties", title_justify="left")
    for key, value in message.properties.items():
        props.add_row(key, str(value))
    out.print(props)
    headers = Table("header", "value", title="headers", title_justify="left")
    for key, value in sorted(message.headers.items()):
        if key != "x-death":
            headers.add_row(key, json.dumps(value) if not isinstance(value, str) else value)
    out.print(headers)
    if message.deaths:
        deaths = Table("queue", "reason", "count", "time", "exchange", "routing keys", title="x-death (newest first)")
        for d in message.deaths:
            deaths.add_row(
                d.queue,
                d.reason,
                str(d.count),
                _when(d.time.isoformat() if d.time else None),
                d.exchange or '""',
                ", ".join(d.routing_keys),
            )
        out.print(deaths)
    body, encoding = message.body_json_or_text()
    text = json.dumps(body, indent=2, sort_keys=True) if encoding == "json" else str(body)
    out.print(Panel(Syntax(text, "json" if encoding == "json" else "text", word_wrap=True), title=f"body ({encoding})"))
    if len(found) > 1:
        out.print(f"[yellow]{len(found)} messages carry this event id; showing the first.[/]")


@app.command()
def replay(
    queue: QueueOption = DEFAULT_DLQ_QUEUE,
    event_id: EventIdOption = None,
    order_id: OrderIdOption = None,
    reason: ReasonOption = None,
    all_: Annotated[bool, typer.Option("--all", help="Every message in the dead-letter queue.")] = False,
    limit: Annotated[int | None, typer.Option("--limit", "-n", min=1, help="Replay at most this many.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be replayed; change nothing.")] = False,
    max_replays: Annotated[
        int, typer.Option("--max-replays", min=1, help="Refuse messages already replayed this many times.")
    ] = 3,
    force_delete: Annotated[
        bool,
        typer.Option(
            "--force-delete",
            help="For a terminate_failed message of provisioner.desired-state: delete the server whatever "
            "Wings says (DELETE /servers/{id}/force). Files Wings still holds may be left on the node.",
        ),
    ] = False,
) -> None:
    """Send dead-lettered messages back to their original queue (default exchange), then remove them.

    Give --event-id, --order-id, --reason (they combine) or --all. Fix the cause first (room on the panel,
    the API key, ...): a replayed message that fails again comes back here."""
    if not (all_ or event_id or order_id or reason):
        err.print("[bold red]usage:[/] say what to replay: --event-id, --order-id, --reason or --all (see --help)")
        raise typer.Exit(EXIT_USAGE)
    selector = select_by(event_id=event_id, order_id=order_id, reason=reason, everything=all_)
    progress = Progress(
        TextColumn("replaying"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )
    task = progress.add_task("scan", total=None)

    def scanned(done: int, total: int) -> None:
        if total >= PROGRESS_FROM and not progress.live.is_started:
            progress.start()
        progress.update(task, completed=done, total=total)

    def result(item: ReplayResult) -> None:
        if item.outcome == Outcome.FAILED:
            progress.console.print(f"[red]failed[/] {item.message.event_id}: {item.error}")

    async def work(connection: AbstractConnection) -> tuple[str, ReplayReport]:
        dlq = DeadLetterQueue(connection, _queue_name(queue))
        try:
            report = await dlq.replay(
                selector,
                limit=limit,
                max_replays=max_replays,
                dry_run=dry_run,
                on_scanned=scanned,
                on_result=result,
                extra_headers={FORCE_DELETE: "true"} if force_delete else None,
            )
        finally:
            if progress.live.is_started:
                progress.stop()
        return dlq.name, report

    name, report = _run(work)
    results = report.results
    if not results:
        err.print(f"[yellow]nothing matched[/] among {report.scanned} message(s) in {name}; nothing was replayed.")
        raise typer.Exit(EXIT_FAILED)
    table = _new_table(f"{'dry run: ' if dry_run else ''}replay from {name}")
    table.add_column("event id / order id", no_wrap=True, min_width=36)
    for column in ("reason", "replays before", "to queue", "outcome"):
        table.add_column(column, overflow="fold", min_width=6)
    styles = {Outcome.REPLAYED: "green", Outcome.WOULD_REPLAY: "cyan", Outcome.REFUSED: "yellow", Outcome.FAILED: "red"}
    for item in results:
        outcome = item.outcome.value + (f": {item.error}" if item.error else "")
        table.add_row(
            f"{_id(item.message.event_id)}\n[dim]{_id(item.message.order_id)}[/]",
            item.message.reason,
            str(item.message.replay_count),
            item.target,
            f"[{styles[item.outcome]}]{outcome}[/]",
        )
    out.print(table)
    counts = {o: report.count(o) for o in Outcome}
    out.print(
        ", ".join(f"{n} {o.value.replace('_', ' ')}" for o, n in counts.items() if n)
        + (". Dry run: nothing was changed." if dry_run else ".")
    )
    if counts[Outcome.REFUSED]:
        out.print(f"Refused messages were replayed {max_replays} times already; inspect them with [bold]show[/].")
    if counts[Outcome.REFUSED] or counts[Outcome.FAILED]:
        raise typer.Exit(EXIT_FAILED)


@app.command()
def purge(
    queue: QueueOption = DEFAULT_DLQ_QUEUE,
    event_id: EventIdOption = None,
    order_id: OrderIdOption = None,
    reason: ReasonOption = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete dead-lettered messages for good (all of them, or those matching the filters)."""
    filtered = bool(event_id or order_id or reason)
    name = dlq_name(_queue_name(queue))

    async def count(connection: AbstractConnection) -> int:
        dlq = DeadLetterQueue(connection, _queue_name(queue))
        if not filtered:
            return await dlq.depth()
        return sum(1 for m in await dlq.peek() if m.matches(event_id=event_id, order_id=order_id, reason=reason))

    matching = _run(count)
    if matching == 0:
        out.print(f"[green]nothing to purge[/] in {name}.")
        return
    if not yes:
        if not sys.stdin.isatty():
            err.print("[bold red]refusing to purge without confirmation[/]: run it in a terminal or add --yes.")
            raise typer.Exit(EXIT_FAILED)
        typer.confirm(f"Delete {matching} message(s) from {name} for good?", abort=True)

    async def work(connection: AbstractConnection) -> int:
        dlq = DeadLetterQueue(connection, _queue_name(queue))
        selector = select_by(event_id=event_id, order_id=order_id, reason=reason) if filtered else None
        return await dlq.purge(selector, limit=matching)  # exactly what was counted (and confirmed)

    deleted = _run(work)
    out.print(f"deleted {deleted} message(s) from {name}.")


@app.command()
def export(
    queue: QueueOption = DEFAULT_DLQ_QUEUE,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to this file, not stdout.")] = None,
    event_id: EventIdOption = None,
    order_id: OrderIdOption = None,
    reason: ReasonOption = None,
) -> None:
    """Write dead-lettered messages as JSON lines (whole message: properties, headers, x-death, body),
    without consuming them."""

    async def work(connection: AbstractConnection) -> int:
        """Each message written as it is read: the queue is never held in memory."""
        written = 0
        with contextlib.ExitStack() as files:
            target = files.enter_context(output.open("w")) if output is not None else None
            async for m in DeadLetterQueue(connection, _queue_name(queue)).scan():
                if not m.matches(event_id=event_id, order_id=order_id, reason=reason):
                    continue
                for line in export_lines([m]):
                    if target is None:
                        typer.echo(line)
                    else:
                        target.write(line + "\n")
                written += 1
        return written

    written = _run(work)
    if output is not None:
        err.print(f"wrote {written} message(s) to {output}")
