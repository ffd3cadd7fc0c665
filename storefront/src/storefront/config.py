"""The storefront's settings, from the environment (the names ``scripts/devstack.py`` and the deploy files set).

Development defaults point at a local stack (``make run``); ``SPAWNPOINT_ENV=production`` refuses to start
while a development default is still in use or a development-only switch is on, as the services do.
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import AnyHttpUrl, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from spawnpoint_kit.settings import DEVELOPMENT_JWT_SECRET

DEVELOPMENT_PUBLISHABLE_KEY = "pk_test_spawnpoint_dev"
TOKEN_SOURCE_PATTERN = r"^(local-storage|cookie|url):[A-Za-z0-9._~/-]{1,200}$"


class StorefrontSettings(BaseSettings):
    """Where the services are, which Stripe.js to load, and where the page finds the customer's token."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True, hide_input_in_errors=True)

    environment: Literal["development", "production"] = Field(default="development", validation_alias="SPAWNPOINT_ENV")
    order_service_url: str = Field(default="http://127.0.0.1:8001", validation_alias="ORDER_SERVICE_URL")
    payment_service_url: str = Field(default="http://127.0.0.1:8002", validation_alias="PAYMENT_SERVICE_URL")
    status_service_url: str = Field(default="http://127.0.0.1:8004", validation_alias="STATUS_SERVICE_URL")
    stripe_js_url: AnyHttpUrl = Field(
        default=AnyHttpUrl("http://127.0.0.1:12111/v3/"),
        validation_alias="STRIPE_JS_URL",
        description="Stripe.js: Stripe's own in production, the Stripe stand-in's /v3/ in development.",
    )
    stripe_publishable_key: str = Field(
        default=DEVELOPMENT_PUBLISHABLE_KEY,
        pattern=r"^pk_(test|live)_[A-Za-z0-9_]+$",
        validation_alias="STRIPE_PUBLISHABLE_KEY",
    )
    panel_url: str = Field(
        default="http://127.0.0.1:8081",
        validation_alias="PANEL_URL",
        description="The game panel customers use; /gameserver/{id} redirects to its /server/{id} page.",
    )
    panel_public_url: str | None = Field(
        default=None,
        validation_alias="STOREFRONT_PANEL_URL",
        description="The panel's address as customers' browsers reach it, when it differs from PANEL_URL.",
    )
    token_source: str = Field(
        default="local-storage:spawnpoint.token",
        pattern=TOKEN_SOURCE_PATTERN,
        validation_alias="STOREFRONT_TOKEN_SOURCE",
        description="Where the page reads the customer's bearer token: local-storage:KEY, cookie:NAME, or "
        'url:/PATH (a same-origin GET answering {"access_token": ...}, sent with the shop\'s cookies).',
    )
    sign_in_url: str | None = Field(
        default=None,
        validation_alias="STOREFRONT_SIGN_IN_URL",
        description="The shop's own login page (production); the page links to it with ?next=<page>.",
    )
    dev_sign_in: bool | None = Field(
        default=None,
        validation_alias="STOREFRONT_DEV_SIGN_IN",
        description="The development sign-in page that mints tokens (default: on in development; refused in "
        "production).",
    )
    jwt_secret: SecretStr = Field(default=SecretStr(DEVELOPMENT_JWT_SECRET), validation_alias="JWT_SECRET")
    jwt_audience: str | None = Field(default=None, validation_alias="JWT_AUDIENCE")
    jwt_issuer: str | None = Field(default=None, validation_alias="JWT_ISSUER")
    test_controls: bool = Field(
        default=False,
        validation_alias="STOREFRONT_TEST_CONTROLS",
        description="/_storefront/streams/...: cut the proxied event streams (browser tests only).",
    )
    proxy_timeout_seconds: float = Field(
        default=15.0, gt=0, le=120, validation_alias="STOREFRONT_PROXY_TIMEOUT_SECONDS"
    )
    stream_idle_seconds: float = Field(
        default=45.0,
        gt=0,
        le=600,
        validation_alias="STOREFRONT_STREAM_IDLE_SECONDS",
        description="An event stream silent this long (no frame, no heartbeat) is closed; the page reconnects.",
    )

    @field_validator("order_service_url", "payment_service_url", "status_service_url", "panel_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @property
    def dev_sign_in_enabled(self) -> bool:
        return self.environment == "development" if self.dev_sign_in is None else self.dev_sign_in

    @property
    def connect_base(self) -> str:
        return (self.panel_public_url or self.panel_url).rstrip("/")

    def development_defaults_in_use(self) -> list[str]:
        """What production must not run with, as ``SETTING (why)``."""
        used: list[str] = []
        if self.jwt_secret.get_secret_value() == DEVELOPMENT_JWT_SECRET and self.dev_sign_in_enabled:
            used.append("JWT_SECRET (the development secret, with the development sign-in on)")
        if self.dev_sign_in_enabled:
            used.append("STOREFRONT_DEV_SIGN_IN (mints tokens for anyone who asks)")
        if self.test_controls:
            used.append("STOREFRONT_TEST_CONTROLS (lets anyone cut the event streams)")
        if self.stripe_publishable_key == DEVELOPMENT_PUBLISHABLE_KEY:
            used.append("STRIPE_PUBLISHABLE_KEY (the stand-in's key)")
        if str(self.stripe_js_url).startswith(("http://127.0.0.1", "http://localhost")):
            used.append("STRIPE_JS_URL (the Stripe stand-in's script)")
        return used

    @model_validator(mode="after")
    def _production_refuses_development_defaults(self) -> Self:
        if self.environment == "production":
            used = self.development_defaults_in_use()
            if used:
                raise ValueError("SPAWNPOINT_ENV=production refuses development settings: " + "; ".join(used))
        return self
