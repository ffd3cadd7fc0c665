"""provisioner settings (environment variables; the README and docs/provisioning.md list them all)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr

from spawnpoint_kit.settings import CommonSettings

from .domain.retry import RetryPolicy, parse_delays

DEVELOPMENT_PANEL_URL = "http://127.0.0.1:8081"
DEVELOPMENT_PANEL_KEY = "ptla_spawnpointdevkey0000000000000000000000000000"
"""The panel stand-in's address and seeded admin key (``sandbox/panel-fake``): refused in production."""


class Settings(CommonSettings):
    database_url: str = Field(
        default="postgresql+asyncpg://postgres@127.0.0.1:5432/spawnpoint_provisioner",
        validation_alias="PROVISIONER_DB_URL",
    )
    panel_url: str = Field(default=DEVELOPMENT_PANEL_URL, validation_alias="PANEL_URL")
    panel_api_key: SecretStr = Field(
        default=SecretStr(DEVELOPMENT_PANEL_KEY),
        validation_alias="PANEL_API_KEY",
        description="Application API key of a root admin (ptla_... on Pterodactyl, papp_... on Pelican).",
    )
    panel_flavor: Literal["pterodactyl", "pelican"] = Field(default="pterodactyl", validation_alias="PANEL_FLAVOR")
    panel_timeout_seconds: float = Field(default=60.0, gt=0, validation_alias="PANEL_TIMEOUT_SECONDS")
    panel_rate_limit_per_minute: float = Field(
        default=200.0,
        gt=0,
        validation_alias="PANEL_RATE_LIMIT_PER_MINUTE",
        description="Panel requests per minute this process may spend (plus the burst); split it between instances.",
    )
    panel_rate_limit_burst: int = Field(default=20, ge=1, validation_alias="PANEL_RATE_LIMIT_BURST")
    panel_max_connections: int = Field(
        default=8,
        ge=1,
        le=100,
        validation_alias="PANEL_MAX_CONNECTIONS",
        description="Kept-alive connections to the panel, and requests in flight at once (the rest wait their turn).",
    )
    panel_retry_attempts: int = Field(default=4, ge=1, le=20, validation_alias="PANEL_RETRY_ATTEMPTS")
    panel_retry_max_seconds: float = Field(default=30.0, gt=0, le=600, validation_alias="PANEL_RETRY_MAX_SECONDS")
    panel_retry_initial_seconds: float = Field(default=0.5, gt=0, validation_alias="PANEL_RETRY_INITIAL_SECONDS")
    panel_retry_max_wait_seconds: float = Field(default=8.0, gt=0, validation_alias="PANEL_RETRY_MAX_WAIT_SECONDS")
    provision_retry_delays: str = Field(
        default="30,120,600",
        pattern=r"^\s*(\d+\s*(,\s*\d+\s*)*)?$",
        validation_alias="PROVISION_RETRY_DELAYS",
        description="Seconds before each delayed redelivery through the broker, comma-separated; empty: none.",
    )
    egg_cache_seconds: float = Field(default=300.0, ge=0, validation_alias="EGG_CACHE_SECONDS")
    install_poll_seconds: float = Field(default=2.0, gt=0, validation_alias="INSTALL_POLL_SECONDS")
    install_max_interval_seconds: float = Field(default=30.0, gt=0, validation_alias="INSTALL_MAX_INTERVAL_SECONDS")
    install_deadline_seconds: float = Field(default=3600.0, gt=0, validation_alias="INSTALL_DEADLINE_SECONDS")

    drift_interval_seconds: float = Field(
        default=300.0,
        ge=0,
        validation_alias="DRIFT_INTERVAL_SECONDS",
        description="Seconds between drift runs (the panel listed and compared with our records); 0 disables the job.",
    )
    drift_auto_fix: bool = Field(
        default=False,
        validation_alias="DRIFT_AUTO_FIX",
        description="The drift job sends the kinds convergence can fix back to it; false: it only reports.",
    )

    settings_check_misses_per_minute: float = Field(
        default=30.0,
        gt=0,
        validation_alias="SETTINGS_CHECK_MISSES_PER_MINUTE",
        description="Panel egg lookups POST /validate-settings may cause per minute (cache misses); past it, 503.",
    )

    def development_defaults_in_use(self) -> list[str]:
        used = super().development_defaults_in_use()
        if self.panel_url.rstrip("/") == DEVELOPMENT_PANEL_URL:
            used.append("PANEL_URL (the local panel stand-in)")
        if self.panel_api_key.get_secret_value() in (
            DEVELOPMENT_PANEL_KEY,
            DEVELOPMENT_PANEL_KEY.replace("ptla", "papp"),
        ):
            used.append("PANEL_API_KEY (the stand-in's seeded key)")
        return used

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            attempts=self.panel_retry_attempts,
            max_seconds=self.panel_retry_max_seconds,
            initial_seconds=self.panel_retry_initial_seconds,
            max_wait_seconds=self.panel_retry_max_wait_seconds,
            broker_delays=parse_delays(self.provision_retry_delays),
        )
