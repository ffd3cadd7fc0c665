"""status-service settings (environment variables; the README lists them all)."""

from __future__ import annotations

from pydantic import Field

from spawnpoint_kit.settings import CommonSettings


class Settings(CommonSettings):
    database_url: str = Field(
        default="postgresql+asyncpg://postgres@127.0.0.1:5432/spawnpoint_status",
        validation_alias="STATUS_DB_URL",
    )
