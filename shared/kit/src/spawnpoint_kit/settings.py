"""Settings every service reads from the environment (pydantic-settings).

Names are the environment variables' names; the README lists them all with their defaults. Secrets are
``SecretStr`` so they never appear in logs or reprs. Each service subclasses ``CommonSettings`` and adds
its own fields (its database URL under a service-specific name, so one shell can run the whole system).
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEVELOPMENT_JWT_SECRET = "spawnpoint-development-secret-change-me"
"""Anyone who reads this repository can mint an operator token with it: refused in production."""


class CommonSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True, hide_input_in_errors=True)
    """hide_input_in_errors: a refused setting never repeats the inputs, which hold every secret that was set."""

    broker_url: SecretStr = Field(
        default=SecretStr("amqp://guest:guest@127.0.0.1:5672/"),
        validation_alias="BROKER_URL",
        description="AMQP URL of RabbitMQ (>= 3.10).",
    )
    namespace: str = Field(
        default="",
        validation_alias="SPAWNPOINT_NAMESPACE",
        description="Prefix for exchange and queue names; tests use a unique one per run.",
    )
    environment: Literal["development", "production"] = Field(
        default="development",
        validation_alias="SPAWNPOINT_ENV",
        description="production refuses to start with any development default (secrets, the stand-ins' "
        "addresses and keys), naming each.",
    )
    jwt_secret: SecretStr = Field(
        default=SecretStr(DEVELOPMENT_JWT_SECRET),
        validation_alias="JWT_SECRET",
        description="HS256 secret that signs customer and operator bearer tokens.",
    )
    jwt_audience: str | None = Field(default=None, validation_alias="JWT_AUDIENCE")
    jwt_issuer: str | None = Field(default=None, validation_alias="JWT_ISSUER", description="Require this `iss`.")
    log_level: str = Field(default="INFO", validation_alias="LOG_LEVEL")
    log_format: Literal["json", "console"] = Field(default="json", validation_alias="LOG_FORMAT")
    relay_batch_size: int = Field(default=200, ge=1, le=1000, validation_alias="RELAY_BATCH_SIZE")
    relay_poll_seconds: float = Field(default=1.0, gt=0, validation_alias="RELAY_POLL_SECONDS")
    relay_linger_seconds: float = Field(
        default=0.005,
        ge=0,
        le=1.0,
        validation_alias="RELAY_LINGER_SECONDS",
        description="After a round that published something, wait this long for company before the next one "
        "(none after an idle round: a lone row goes out at once).",
    )
    consumer_prefetch: int = Field(default=32, ge=1, le=2000, validation_alias="CONSUMER_PREFETCH")
    db_pool_size: int = Field(default=10, ge=1, validation_alias="DB_POOL_SIZE")
    dlq_metrics_seconds: float = Field(
        default=15.0, gt=0, validation_alias="DLQ_METRICS_SECONDS", description="How often DLQ depths are read."
    )
    inbox_retention_days: float = Field(
        default=30.0,
        ge=1,
        validation_alias="INBOX_RETENTION_DAYS",
        description="Inbox rows older than this are deleted (hourly): far beyond any redelivery; a duplicate "
        "older than this meets the handlers' own state checks.",
    )

    def development_defaults_in_use(self) -> list[str]:
        """What is still set for development, as ``SETTING (why)``; each service adds its own settings."""
        used: list[str] = []
        secret = self.jwt_secret.get_secret_value()
        if secret == DEVELOPMENT_JWT_SECRET:
            used.append("JWT_SECRET (the development secret, published in this repository)")
        elif len(secret) < 32:
            used.append("JWT_SECRET (shorter than 32 characters)")
        if "guest:guest@" in self.broker_url.get_secret_value():
            used.append("BROKER_URL (RabbitMQ's default guest account)")
        return used

    @model_validator(mode="after")
    def _production_refuses_development_defaults(self) -> Self:
        if self.environment == "production":
            used = self.development_defaults_in_use()
            if used:
                raise ValueError(
                    "SPAWNPOINT_ENV=production refuses development settings: " + "; ".join(used) + ". Set each "
                    "of them for production (docs/operations.md lists them), or unset SPAWNPOINT_ENV for development."
                )
        return self
