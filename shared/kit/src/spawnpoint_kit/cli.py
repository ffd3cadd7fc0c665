"""The command line every service has: ``<service> migrate``, ``<service> serve``, ``<service> openapi``.

Written once here so the four services start, migrate and document themselves the same way.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
import uvicorn


def service_cli(
    *,
    name: str,
    app_path: str,
    default_port: int,
    alembic_ini: Path,
    database_url: Callable[[], str],
    openapi: Callable[[], dict[str, Any]],
) -> typer.Typer:
    cli = typer.Typer(name=name, help=f"Run and manage {name}.", no_args_is_help=True, add_completion=False)

    @cli.command()
    def migrate() -> None:
        """Create the database if missing and apply every migration (alembic upgrade head)."""
        from .db import prepare_database

        asyncio.run(prepare_database(alembic_ini, database_url()))
        typer.echo(f"{name}: database is at the latest migration")

    @cli.command()
    def serve(
        host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="TCP port")] = default_port,
        migrate_first: Annotated[bool, typer.Option("--migrate/--no-migrate", help="Migrate before")] = True,
    ) -> None:
        """Serve the HTTP API and run the consumers, relay and background jobs in this process.

        The migrations run as the first step of the service's start (a database that is still down delays
        readiness; the HTTP server answers /healthz and a 503 /readyz meanwhile)."""
        from .runtime import MIGRATE_ON_START

        if migrate_first:
            os.environ[MIGRATE_ON_START] = str(alembic_ini)
        else:
            os.environ.pop(MIGRATE_ON_START, None)
        uvicorn.run(
            app_path,
            host=host,
            port=port,
            log_config=None,
            access_log=False,
            proxy_headers=False,
            timeout_graceful_shutdown=20,
        )

    @cli.command("openapi")
    def openapi_cmd(
        output: Annotated[Path | None, typer.Option("-o", help="Write to this file instead of stdout")] = None,
    ) -> None:
        """Print the OpenAPI document."""
        text = json.dumps(openapi(), indent=2, sort_keys=True) + "\n"
        if output:
            output.write_text(text)
        else:
            typer.echo(text, nl=False)

    return cli
