"""payment-service settings (environment variables; the README lists them all)."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from spawnpoint_kit.settings import CommonSettings

from .domain.refunds import RefundPolicy
from .domain.rental import RentalPolicy

DEVELOPMENT_STRIPE_KEY = "sk_test_spawnpoint_dev"
DEVELOPMENT_WEBHOOK_SECRET = "whsec_spawnpoint_dev"


def _is_local(url: str | None) -> bool:
    host = (urlsplit(url).hostname or "") if url else ""
    return host in ("localhost", "127.0.0.1", "::1") or host.endswith(".localhost")


class Settings(CommonSettings):
    database_url: str = Field(
        default="postgresql+asyncpg://postgres@127.0.0.1:5432/spawnpoint_payments",
        validation_alias="PAYMENT_DB_URL",
    )
    order_service_url: str = Field(default="http://127.0.0.1:8001", validation_alias="ORDER_SERVICE_URL")
    stripe_api_key: SecretStr = Field(default=SecretStr(DEVELOPMENT_STRIPE_KEY), validation_alias="STRIPE_API_KEY")
    stripe_api_base: str | None = Field(
        default="http://127.0.0.1:12111",
        validation_alias="STRIPE_API_BASE",
        description="Base address of the Stripe API; empty for the real Stripe.",
    )
    stripe_webhook_secrets: SecretStr = Field(
        default=SecretStr(DEVELOPMENT_WEBHOOK_SECRET),
        validation_alias="STRIPE_WEBHOOK_SECRETS",
        description="Comma-separated endpoint secrets; several are accepted at once while rotating.",
    )
    stripe_webhook_tolerance_seconds: int = Field(default=300, ge=1, validation_alias="STRIPE_WEBHOOK_TOLERANCE")
    stripe_max_network_retries: int = Field(default=2, ge=0, le=5, validation_alias="STRIPE_MAX_NETWORK_RETRIES")
    checkout_return_url: str = Field(
        default="http://localhost:3000/checkout/return?session_id={CHECKOUT_SESSION_ID}",
        validation_alias="CHECKOUT_RETURN_URL",
    )
    stripe_calls_per_customer_per_minute: float = Field(
        default=30.0,
        gt=0,
        validation_alias="STRIPE_CALLS_PER_CUSTOMER_PER_MINUTE",
        description="Checkout openings and return-page checks (each a live Stripe call) one customer may make "
        "per minute on one process; past it, 429.",
    )
    checkout_expiry_minutes: int = Field(default=60, ge=31, le=24 * 60, validation_alias="CHECKOUT_EXPIRY_MINUTES")
    webhook_worker_concurrency: int = Field(
        default=16,
        ge=0,
        le=256,
        validation_alias="WEBHOOK_WORKER_CONCURRENCY",
        description="Stored Stripe events applied at once by this process; 0 runs no worker here (an intake-only "
        "process: events wait, stored, for a process that runs one).",
    )
    webhook_worker_busy_concurrency: int = Field(
        default=1,
        ge=1,
        le=256,
        validation_alias="WEBHOOK_WORKER_BUSY_CONCURRENCY",
        description="Stored events applied at once while webhooks pour into this process (WEBHOOK_FLOOD_RATE; "
        "the intake goes first: service_layer/webhook_pressure.py); WEBHOOK_WORKER_CONCURRENCY again once the "
        "flood has passed.",
    )
    webhook_worker_busy_events_per_second: float = Field(
        default=5.0,
        gt=0,
        le=1000,
        validation_alias="WEBHOOK_WORKER_BUSY_EVENTS_PER_SECOND",
        description="During a flood of webhooks, stored events this process's worker starts per second at most "
        "(each sets off OrderPaid and a provisioning, which cost the machine far more than the intake).",
    )
    webhook_flood_rate: float = Field(
        default=100.0,
        gt=0,
        validation_alias="WEBHOOK_FLOOD_RATE",
        description="Webhooks per second on this process (over a quarter of a second) that make a flood; so do "
        "8 deliveries in the endpoint at once. Ordinary trade (a webhook or two per order) is far below it.",
    )
    payment_process: Literal["all", "api", "worker"] = Field(
        default="all",
        validation_alias="PAYMENT_PROCESS",
        description="What this process runs: all (the HTTP API, the webhook worker, the consumers, the relay and "
        "the background jobs), api (the HTTP API only: checkout, return page, webhook intake) or worker "
        "(everything but meant to take no traffic: `payment-service worker`). An api process needs a worker "
        "process beside it on the same database.",
    )
    sweep_interval_seconds: float = Field(
        default=60.0,
        ge=0.5,
        le=3600,
        validation_alias="PAYMENT_SWEEP_INTERVAL_SECONDS",
        description="How often the reconciliation sweeper runs: a lost webhook delays an order by at most this.",
    )
    sweep_after_seconds: float = Field(
        default=30.0,
        ge=0,
        le=24 * 3600,
        validation_alias="PAYMENT_SWEEP_AFTER_SECONDS",
        description="A checkout session younger than this is left to the webhook and the return page.",
    )
    sweep_batch_size: int = Field(default=200, ge=1, le=5000, validation_alias="PAYMENT_SWEEP_BATCH_SIZE")
    refund_policy: RefundPolicy = Field(
        default=RefundPolicy.HOLD,
        validation_alias="REFUND_POLICY",
        description="Provisioning failures a replay cannot fix: immediate, hold (then refund) or never.",
    )
    refund_hold_seconds: float = Field(default=900.0, ge=0, le=30 * 24 * 3600, validation_alias="REFUND_HOLD_SECONDS")
    rental_grace_days: float = Field(
        default=14.0,
        ge=0,
        le=60,
        validation_alias="RENTAL_GRACE_DAYS",
        description="A past-due server keeps running at least this long after the failed renewal (Stripe's "
        "recommended retry window is two weeks).",
    )
    rental_retention_days: float = Field(
        default=7.0,
        ge=0,
        le=365,
        validation_alias="RENTAL_RETENTION_DAYS",
        description="A lapsed or ended server is kept, suspended, this long before it is deleted.",
    )
    stripe_test_clock_per_customer: bool = Field(
        default=False,
        validation_alias="STRIPE_TEST_CLOCK_PER_CUSTOMER",
        description="Test mode only (refused with a live key): every new Stripe customer gets its own test "
        "clock, so a rehearsal can move one customer's time.",
    )
    rental_reconcile_seconds: float = Field(
        default=3600.0,
        ge=1,
        le=7 * 24 * 3600,
        validation_alias="RENTAL_RECONCILE_SECONDS",
        description="Every subscription is read from Stripe again at least this often: a webhook lost entirely "
        "delays a rental by at most this.",
    )
    rental_deadline_poll_seconds: float = Field(
        default=30.0, ge=0.1, le=3600, validation_alias="RENTAL_DEADLINE_POLL_SECONDS"
    )
    billing_portal_return_url: str = Field(
        default="http://localhost:3000/account",
        validation_alias="BILLING_PORTAL_RETURN_URL",
        description="Where Stripe's customer portal sends the customer back (a request may name its own).",
    )
    rental_termination_warning_days: float = Field(
        default=2.0, ge=0, le=60, validation_alias="RENTAL_TERMINATION_WARNING_DAYS"
    )

    @field_validator("checkout_return_url")
    @classmethod
    def _return_url_names_the_session(cls, value: str) -> str:
        if "{CHECKOUT_SESSION_ID}" not in value:
            raise ValueError("CHECKOUT_RETURN_URL must contain the literal {CHECKOUT_SESSION_ID}")
        return value

    @model_validator(mode="after")
    def _no_live_key_against_a_stand_in(self) -> Settings:
        """A live key sent to a local address would hand the shop's Stripe secret to whatever listens there."""
        if self.stripe_api_key.get_secret_value().startswith(("sk_live_", "rk_live_")) and _is_local(
            self.stripe_api_base
        ):
            raise ValueError("STRIPE_API_KEY is a live key but STRIPE_API_BASE points at a local stand-in; unset it")
        if self.stripe_test_clock_per_customer and self.stripe_api_key.get_secret_value().startswith(
            ("sk_live_", "rk_live_")
        ):
            raise ValueError("STRIPE_TEST_CLOCK_PER_CUSTOMER is for test mode; it is refused with a live key")
        return self

    def development_defaults_in_use(self) -> list[str]:
        used = super().development_defaults_in_use()
        if self.stripe_api_key.get_secret_value() == DEVELOPMENT_STRIPE_KEY:
            used.append("STRIPE_API_KEY (the stand-in's development key)")
        if DEVELOPMENT_WEBHOOK_SECRET in self.webhook_secrets():
            used.append("STRIPE_WEBHOOK_SECRETS (the stand-in's development secret)")
        if _is_local(self.stripe_api_base):
            used.append("STRIPE_API_BASE (the local Stripe stand-in; empty for the real Stripe)")
        if _is_local(self.checkout_return_url):
            used.append("CHECKOUT_RETURN_URL (a local address customers' browsers cannot reach)")
        return used

    def webhook_secrets(self) -> list[str]:
        return [s.strip() for s in self.stripe_webhook_secrets.get_secret_value().split(",") if s.strip()]

    @property
    def rental_policy(self) -> RentalPolicy:
        return RentalPolicy(
            grace=timedelta(days=self.rental_grace_days),
            retention=timedelta(days=self.rental_retention_days),
            termination_warning=timedelta(days=self.rental_termination_warning_days),
        )

    @property
    def refund_hold(self) -> timedelta:
        return timedelta(seconds=self.refund_hold_seconds)
