"""``notification-service migrate | serve | openapi``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from spawnpoint_kit.cli import service_cli

from ..config import Settings

ALEMBIC_INI = Path(__file__).resolve().parents[3] / "alembic.ini"


def _openapi() -> dict[str, Any]:
    from ..bootstrap import create_app

    return create_app().openapi()


cli = service_cli(
    name="notification-service",
    app_path="notification_service.main:app",
    default_port=8005,
    alembic_ini=ALEMBIC_INI,
    database_url=lambda: Settings().database_url,
    openapi=_openapi,
)


def main() -> None:
    cli()
