"""provisioner settings (environment variables; the README lists them all)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr

from spawnpoint_kit.settings import CommonSettings


class Settings(CommonSettings):
    database_url: str = Field(
        default="postgresql+asyncpg://postgres@127.0.0.1:5432/spawnpoint_provisioner",
        validation_alias="PROVISIONER_DB_URL",
    )
    panel_url: str = Field(default="http://127.0.0.1:8081", validation_alias="PANEL_URL")
    panel_api_key: SecretStr = Field(
        default=SecretStr("ptla_spawnpointdevkey0000000000000000000000000000"),
        validation_alias="PANEL_API_KEY",
        description="Application API key of a root admin (ptla_... on Pterodactyl, papp_... on Pelican).",
    )
    panel_flavor: Literal["pterodactyl", "pelican"] = Field(default="pterodactyl", validation_alias="PANEL_FLAVOR")
    panel_timeout_seconds: float = Field(default=60.0, gt=0, validation_alias="PANEL_TIMEOUT_SECONDS")
    install_poll_seconds: float = Field(default=2.0, gt=0, validation_alias="INSTALL_POLL_SECONDS")
    install_deadline_seconds: float = Field(default=3600.0, gt=0, validation_alias="INSTALL_DEADLINE_SECONDS")
