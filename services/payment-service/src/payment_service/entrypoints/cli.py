"""``payment-service migrate | serve | worker | openapi``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from spawnpoint_kit.cli import service_cli

from ..config import Settings

ALEMBIC_INI = Path(__file__).resolve().parents[3] / "alembic.ini"
WORKER_PORT = 8012


def _openapi() -> dict[str, Any]:
    from ..bootstrap import create_app

    return create_app().openapi()


cli = service_cli(
    name="payment-service",
    app_path="payment_service.main:app",
    default_port=8002,
    alembic_ini=ALEMBIC_INI,
    database_url=lambda: Settings().database_url,
    openapi=_openapi,
)
_serve = next(
    (c.callback for c in cli.registered_commands if (c.name or getattr(c.callback, "__name__", "")) == "serve"), None
)
"""The kit's ``serve`` (``worker`` is it with ``PAYMENT_PROCESS=worker``)."""


@cli.command()
def worker(
    host: Annotated[str, typer.Option(help="Interface to listen on (health, readiness, metrics)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = WORKER_PORT,
    migrate_first: Annotated[bool, typer.Option("--migrate/--no-migrate", help="Migrate before")] = False,
) -> None:
    """Run the webhook worker, the provisioning consumer, the relay and the background jobs
    (``PAYMENT_PROCESS=worker``) beside a ``PAYMENT_PROCESS=api`` process that takes the HTTP traffic, so that
    fulfilling a burst never slows the webhooks down. Its HTTP port answers /healthz, /readyz and /metrics."""
    os.environ["PAYMENT_PROCESS"] = "worker"
    if _serve is None:
        raise RuntimeError("the kit's serve command is missing")
    _serve(host=host, port=port, migrate_first=migrate_first)


def main() -> None:
    cli()
