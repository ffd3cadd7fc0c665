"""order-service settings (environment variables; see the README for the full list)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from spawnpoint_kit.settings import CommonSettings

DEFAULT_CATALOG = Path(__file__).parent / "data" / "catalog.yaml"


class Settings(CommonSettings):
    database_url: str = Field(
        default="postgresql+asyncpg://postgres@127.0.0.1:5432/spawnpoint_orders",
        validation_alias="ORDER_DB_URL",
    )
    catalog_path: Path = Field(default=DEFAULT_CATALOG, validation_alias="CATALOG_PATH")
    provisioner_url: str = Field(
        default="http://127.0.0.1:8003",
        validation_alias="PROVISIONER_URL",
        description="Where to check settings against the panel's egg before payment; empty: no check.",
    )
