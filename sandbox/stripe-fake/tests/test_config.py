"""Command-line and environment configuration."""

from __future__ import annotations

import pytest

from stripe_fake.config import FakeConfig, config_from_args

pytestmark = pytest.mark.unit


def test_defaults() -> None:
    config = config_from_args([], {})
    assert config == FakeConfig()
    assert (config.host, config.port, config.webhook_secret) == ("127.0.0.1", 12111, "whsec_spawnpoint_dev")
    assert (config.retry_base_seconds, config.retry_cap_seconds, config.max_attempts) == (1.0, 60.0, 8)
    assert config.delivery_timeout_seconds == 10.0
    assert config.webhook_url is None and config.webhook_events is None
    assert config.log_level == "warning"


def test_environment_then_flags_win() -> None:
    env = {
        "STRIPE_FAKE_PORT": "13000",
        "STRIPE_FAKE_WEBHOOK_URL": "http://127.0.0.1:8002/webhooks/stripe",
        "STRIPE_FAKE_WEBHOOK_SECRET": "whsec_from_env\n",
        "STRIPE_FAKE_WEBHOOK_EVENTS": "checkout.session.completed, checkout.session.expired",
        "STRIPE_FAKE_RETRY_BASE_SECONDS": "0.5",
        "STRIPE_FAKE_RETRY_CAP_SECONDS": "4",
        "STRIPE_FAKE_MAX_ATTEMPTS": "3",
        "STRIPE_FAKE_DELIVERY_TIMEOUT_SECONDS": "2.5",
        "STRIPE_FAKE_LOG_LEVEL": "INFO",
    }
    config = config_from_args(["--port", "14000", "--webhook-events", "*"], env)
    assert config.port == 14000
    assert config.webhook_url == "http://127.0.0.1:8002/webhooks/stripe"
    assert config.webhook_secret == "whsec_from_env"
    assert config.webhook_events is None
    assert (config.retry_base_seconds, config.retry_cap_seconds, config.max_attempts) == (0.5, 4.0, 3)
    assert config.delivery_timeout_seconds == 2.5
    assert config.log_level == "info"
    assert config_from_args([], env).webhook_events == (
        "checkout.session.completed",
        "checkout.session.expired",
    )


def test_retry_schedule_is_exponential_and_capped() -> None:
    config = FakeConfig(retry_base_seconds=1, retry_cap_seconds=60)
    assert [config.retry_delay(n) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]


def test_bad_values_exit_with_usage() -> None:
    with pytest.raises(SystemExit):
        config_from_args(["--max-attempts", "0"], {})
    with pytest.raises(SystemExit):
        config_from_args([], {"STRIPE_FAKE_PORT": "nope"})


def test_billing_knobs_from_environment() -> None:
    env = {
        "STRIPE_FAKE_DUNNING_RETRY_DAYS": "1, 2.5",
        "STRIPE_FAKE_DUNNING_SUBSCRIPTION_ACTION": "unpaid",
        "STRIPE_FAKE_DUNNING_INVOICE_ACTION": "uncollectible",
        "STRIPE_FAKE_TEST_CLOCK_ADVANCE_SECONDS": "0.5",
    }
    config = config_from_args([], env)
    settings = config.billing_settings()
    assert settings.retry_days == (1.0, 2.5)
    assert (settings.subscription_action, settings.invoice_action) == ("unpaid", "uncollectible")
    assert settings.test_clock_advance_seconds == 0.5
    defaults = FakeConfig().billing_settings()
    assert (defaults.retry_days, defaults.subscription_action, defaults.invoice_action) == ((1, 3, 5), "cancel", "open")
    assert config_from_args(["--dunning-retry-days", "none"], {}).dunning_retry_days == ()
    with pytest.raises(SystemExit):
        config_from_args(["--dunning-subscription-action", "explode"], {})
    with pytest.raises(SystemExit):
        config_from_args(["--dunning-retry-days", "3,1"], {})
