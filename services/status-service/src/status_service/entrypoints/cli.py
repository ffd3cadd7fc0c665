"""``status-service migrate | serve | openapi | rebuild``.

``rebuild`` recomputes every order's read model from the stored events alone, with the projection the
consumer uses, and reports what it found. On a healthy system it changes nothing (exit 0); after a fix
to the projection rules it rewrites the rows that differ, bumps their versions and notifies the running
processes, so polls and streams show the corrected state at once. ``--check`` only reports (exit 1 when
anything differs), which makes it a drift alarm.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from spawnpoint_kit.cli import service_cli

from ..config import Settings

ALEMBIC_INI = Path(__file__).resolve().parents[3] / "alembic.ini"


def _openapi() -> dict[str, Any]:
    from ..bootstrap import create_app

    return create_app().openapi()


cli = service_cli(
    name="status-service",
    app_path="status_service.main:app",
    default_port=8004,
    alembic_ini=ALEMBIC_INI,
    database_url=lambda: Settings().database_url,
    openapi=_openapi,
)


@cli.command()
def rebuild(
    check: Annotated[bool, typer.Option("--check", help="Only report what would change; exit 1 if anything")] = False,
    batch_size: Annotated[int, typer.Option(min=1, max=5000, help="Orders per transaction")] = 200,
) -> None:
    """Recompute the whole read model from the stored events (safe while the service runs)."""
    from spawnpoint_kit.db import make_engine, make_session_factory
    from spawnpoint_kit.messaging.topology import Topology

    from ..service_layer.projector import RebuildReport
    from ..service_layer.projector import rebuild as run_rebuild
    from ..service_layer.unit_of_work import SqlStatusUnitOfWork

    console = Console(stderr=True)

    async def go() -> RebuildReport:
        settings = Settings()
        engine = make_engine(settings.database_url, pool_size=2)
        sessions = make_session_factory(engine)

        def unit_of_work() -> SqlStatusUnitOfWork:
            return SqlStatusUnitOfWork(sessions, Topology(settings.namespace))

        try:
            with Progress(
                TextColumn("[bold]rebuilding[/]" if not check else "[bold]checking[/]"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
                transient=True,
            ) as progress:
                task = progress.add_task("orders", total=None)

                def advance(done: int, total: int) -> None:
                    progress.update(task, completed=done, total=total)

                return await run_rebuild(unit_of_work, batch_size=batch_size, check=check, progress=advance)
        finally:
            await engine.dispose()

    try:
        report = asyncio.run(go())
    except OSError as exc:
        console.print(f"[red]cannot reach the database:[/] {exc}")
        raise typer.Exit(3) from exc
    verb = "would change" if check else "changed"
    console.print(
        f"{report.orders} orders: {report.changed} {verb} (visible), {report.corrected} "
        f"{'would be ' if check else ''}corrected (bookkeeping), {report.removed} "
        f"{'would be ' if check else ''}removed, {report.orders - report.changed - report.corrected - report.removed} "
        "identical"
    )
    if check and not report.identical:
        raise typer.Exit(1)


def main() -> None:
    cli()
