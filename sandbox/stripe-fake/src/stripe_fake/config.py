"""Settings of the stand-in, from command-line flags and ``STRIPE_FAKE_*`` environment variables.

A flag wins over its environment variable, which wins over the default. The defaults match what the
rest of Spawnpoint expects in development: port 12111 (the port the SDK is pointed at), secret
``whsec_spawnpoint_dev``, and Stripe's behaviour of retrying failed deliveries with exponential backoff,
compressed from days into seconds.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from stripe_fake.billing.settings import (
    DEFAULT_RETRY_DAYS,
    INVOICE_ACTIONS,
    SUBSCRIPTION_ACTIONS,
    BillingSettings,
    parse_retry_days,
)

API_VERSION = "2026-10-28.endive"
"""API version the pinned SDK (stripe 16.1.0) sends; events are rendered in it."""

DEFAULT_PORT = 12111
DEFAULT_WEBHOOK_SECRET = "whsec_spawnpoint_dev"
LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")


@dataclass(frozen=True, slots=True)
class FakeConfig:
    """Everything the fake needs to start; immutable once the app is built."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    webhook_url: str | None = None
    webhook_secret: str = DEFAULT_WEBHOOK_SECRET
    webhook_events: tuple[str, ...] | None = None
    retry_base_seconds: float = 1.0
    retry_cap_seconds: float = 60.0
    max_attempts: int = 8
    delivery_timeout_seconds: float = 10.0
    log_level: str = "warning"
    expiry_sweep_seconds: float = 1.0
    delivery_history_limit: int = 100_000
    dunning_retry_days: tuple[float, ...] = DEFAULT_RETRY_DAYS
    dunning_subscription_action: str = "cancel"
    dunning_invoice_action: str = "open"
    test_clock_advance_seconds: float = 0.0
    embedded_settle_seconds: float = 10.0
    """How long the embedded form's delayed payment method takes to succeed or fail (0: never by itself)."""

    def __post_init__(self) -> None:
        self.billing_settings()  # validates the dunning and test-clock knobs
        if self.retry_base_seconds < 0 or self.retry_cap_seconds < 0:
            raise ValueError("retry delays must be >= 0")
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        if self.delivery_timeout_seconds <= 0:
            raise ValueError("delivery timeout must be > 0")
        if self.expiry_sweep_seconds <= 0:
            raise ValueError("expiry sweep interval must be > 0")
        if self.embedded_settle_seconds < 0:
            raise ValueError("embedded settle seconds must be >= 0")
        if self.log_level not in LOG_LEVELS:
            raise ValueError(f"log level must be one of {', '.join(LOG_LEVELS)}")

    def billing_settings(self) -> BillingSettings:
        """The dunning settings the fake starts with (and returns to on a data reset)."""
        return BillingSettings(
            retry_days=self.dunning_retry_days,
            subscription_action=self.dunning_subscription_action,
            invoice_action=self.dunning_invoice_action,
            test_clock_advance_seconds=self.test_clock_advance_seconds,
        )

    def retry_delay(self, attempt: int) -> float:
        """Wait after failed attempt number ``attempt`` (1-based): base * 2^(attempt-1), capped."""
        return float(min(self.retry_base_seconds * (2 ** (attempt - 1)), self.retry_cap_seconds))


def parse_events(raw: str | None) -> tuple[str, ...] | None:
    """``"a, b"`` -> ``("a", "b")``; empty or ``*`` means every event type."""
    if raw is None:
        return None
    events = tuple(item.strip() for item in raw.split(",") if item.strip())
    if not events or events == ("*",):
        return None
    return events


def build_parser(environ: Mapping[str, str]) -> argparse.ArgumentParser:
    """Argument parser whose defaults come from the environment (each help names its variable)."""

    def env(name: str, default: str) -> str:
        value = environ.get(name)
        return value if value not in (None, "") else default

    parser = argparse.ArgumentParser(
        prog="stripe-fake",
        description="Stand-in for the Stripe API (Checkout Sessions, Billing, test clocks, refunds, signed webhooks).",
    )
    add = parser.add_argument
    add("--host", default=env("STRIPE_FAKE_HOST", "127.0.0.1"), help="bind address (STRIPE_FAKE_HOST, 127.0.0.1)")
    add(
        "--port",
        type=int,
        default=int(env("STRIPE_FAKE_PORT", str(DEFAULT_PORT))),
        help=f"listen port (STRIPE_FAKE_PORT, {DEFAULT_PORT})",
    )
    add(
        "--webhook-url",
        default=environ.get("STRIPE_FAKE_WEBHOOK_URL") or None,
        help="webhook endpoint registered at start, kept across DELETE /_fake/data (STRIPE_FAKE_WEBHOOK_URL)",
    )
    add(
        "--webhook-secret",
        default=env("STRIPE_FAKE_WEBHOOK_SECRET", DEFAULT_WEBHOOK_SECRET),
        help=f"signing secret of that endpoint (STRIPE_FAKE_WEBHOOK_SECRET, {DEFAULT_WEBHOOK_SECRET})",
    )
    add(
        "--webhook-events",
        default=environ.get("STRIPE_FAKE_WEBHOOK_EVENTS") or None,
        help="comma-separated event types for that endpoint (STRIPE_FAKE_WEBHOOK_EVENTS, all types)",
    )
    add(
        "--retry-base-seconds",
        type=float,
        default=float(env("STRIPE_FAKE_RETRY_BASE_SECONDS", "1")),
        help="delay after the first failed attempt, doubled each time (STRIPE_FAKE_RETRY_BASE_SECONDS, 1)",
    )
    add(
        "--retry-cap-seconds",
        type=float,
        default=float(env("STRIPE_FAKE_RETRY_CAP_SECONDS", "60")),
        help="longest delay between attempts (STRIPE_FAKE_RETRY_CAP_SECONDS, 60)",
    )
    add(
        "--max-attempts",
        type=int,
        default=int(env("STRIPE_FAKE_MAX_ATTEMPTS", "8")),
        help="attempts per event and endpoint, the first included (STRIPE_FAKE_MAX_ATTEMPTS, 8)",
    )
    add(
        "--delivery-timeout-seconds",
        type=float,
        default=float(env("STRIPE_FAKE_DELIVERY_TIMEOUT_SECONDS", "10")),
        help="receiver answer timeout, counted as a failure (STRIPE_FAKE_DELIVERY_TIMEOUT_SECONDS, 10)",
    )
    add(
        "--dunning-retry-days",
        default=env("STRIPE_FAKE_DUNNING_RETRY_DAYS", ",".join(f"{d:g}" for d in DEFAULT_RETRY_DAYS)),
        help="automatic retries of a failed invoice, in days after the first failure "
        "(STRIPE_FAKE_DUNNING_RETRY_DAYS, 1,3,5; 'none' for no retries)",
    )
    add(
        "--dunning-subscription-action",
        choices=SUBSCRIPTION_ACTIONS,
        default=env("STRIPE_FAKE_DUNNING_SUBSCRIPTION_ACTION", "cancel"),
        help="subscription status once retries are exhausted (STRIPE_FAKE_DUNNING_SUBSCRIPTION_ACTION, cancel)",
    )
    add(
        "--dunning-invoice-action",
        choices=INVOICE_ACTIONS,
        default=env("STRIPE_FAKE_DUNNING_INVOICE_ACTION", "open"),
        help="invoice status once retries are exhausted (STRIPE_FAKE_DUNNING_INVOICE_ACTION, open)",
    )
    add(
        "--test-clock-advance-seconds",
        type=float,
        default=float(env("STRIPE_FAKE_TEST_CLOCK_ADVANCE_SECONDS", "0")),
        help="wall time a test clock stays `advancing` before it processes (STRIPE_FAKE_TEST_CLOCK_ADVANCE_SECONDS, 0)",
    )
    add(
        "--embedded-settle-seconds",
        type=float,
        default=float(env("STRIPE_FAKE_EMBEDDED_SETTLE_SECONDS", "10")),
        help="seconds until the embedded form's delayed payment method (SEPA) succeeds or fails; 0: only "
        "through POST /_fake/sessions/{id}/async (STRIPE_FAKE_EMBEDDED_SETTLE_SECONDS, 10)",
    )
    add(
        "--log-level",
        choices=LOG_LEVELS,
        default=env("STRIPE_FAKE_LOG_LEVEL", "warning").lower(),
        help="log level; the access log is always off (STRIPE_FAKE_LOG_LEVEL, warning)",
    )
    return parser


def config_from_args(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> FakeConfig:
    """Parse flags and environment into a :class:`FakeConfig` (exits with a usage message on errors)."""
    env = os.environ if environ is None else environ
    try:
        parser = build_parser(env)
    except ValueError as exc:  # a malformed numeric STRIPE_FAKE_* variable
        raise SystemExit(f"stripe-fake: invalid environment variable: {exc}") from exc
    args = parser.parse_args(argv)
    secret = str(args.webhook_secret).strip()
    raw_days = str(args.dunning_retry_days).strip()
    try:
        retry_days = () if raw_days.lower() == "none" else parse_retry_days(raw_days)
    except ValueError:
        parser.error(f"invalid retry days: {raw_days!r} (expected e.g. 1,3,5)")
    try:
        return FakeConfig(
            host=args.host,
            port=args.port,
            webhook_url=(args.webhook_url or "").strip() or None,
            webhook_secret=secret,
            webhook_events=parse_events(args.webhook_events),
            retry_base_seconds=args.retry_base_seconds,
            retry_cap_seconds=args.retry_cap_seconds,
            max_attempts=args.max_attempts,
            delivery_timeout_seconds=args.delivery_timeout_seconds,
            log_level=args.log_level,
            dunning_retry_days=retry_days,
            dunning_subscription_action=args.dunning_subscription_action,
            dunning_invoice_action=args.dunning_invoice_action,
            test_clock_advance_seconds=args.test_clock_advance_seconds,
            embedded_settle_seconds=args.embedded_settle_seconds,
        )
    except ValueError as exc:
        parser.error(str(exc))
