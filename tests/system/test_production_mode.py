"""SPAWNPOINT_ENV=production refuses every development default, naming each (finding 9); development needs
no configuration at all."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from pydantic import ValidationError

from order_service.config import Settings as OrderSettings
from payment_service.config import Settings as PaymentSettings
from provisioner.config import Settings as ProvisionerSettings
from status_service.config import Settings as StatusSettings

pytestmark = pytest.mark.unit

OWN: dict[str, Any] = {
    "SPAWNPOINT_ENV": "production",
    "JWT_SECRET": "a-production-secret-of-at-least-thirty-two-characters",
    "BROKER_URL": "amqps://spawnpoint:s3cret@rabbit.shop.example:5671/spawnpoint",
}


@pytest.mark.parametrize("settings", [OrderSettings, PaymentSettings, ProvisionerSettings, StatusSettings])
def test_every_service_starts_in_development_with_no_configuration(settings: type) -> None:
    assert settings().environment == "development"


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        (OrderSettings, ["JWT_SECRET", "BROKER_URL"]),
        (StatusSettings, ["JWT_SECRET", "BROKER_URL"]),
        (
            PaymentSettings,
            ["JWT_SECRET", "STRIPE_API_KEY", "STRIPE_WEBHOOK_SECRETS", "STRIPE_API_BASE", "CHECKOUT_RETURN_URL"],
        ),
        (ProvisionerSettings, ["JWT_SECRET", "PANEL_URL", "PANEL_API_KEY"]),
    ],
)
def test_production_with_development_defaults_refuses_naming_each(
    settings: type, named: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BROKER_URL", raising=False)  # the default, not the session's .run/env user
    with pytest.raises(ValidationError) as refused:
        settings(SPAWNPOINT_ENV="production")
    for name in named:
        assert name in str(refused.value)
    assert "spawnpoint-development-secret" not in str(refused.value)


def test_production_with_settings_of_its_own_starts() -> None:
    assert OrderSettings(**OWN).environment == "production"
    payment = PaymentSettings(
        **OWN,
        STRIPE_API_KEY="sk_live_51abc",
        STRIPE_API_BASE="",
        STRIPE_WEBHOOK_SECRETS="whsec_live_endpoint_secret",
        CHECKOUT_RETURN_URL="https://shop.example/checkout/return?session_id={CHECKOUT_SESSION_ID}",
    )
    assert payment.environment == "production"
    provisioner = ProvisionerSettings(**OWN, PANEL_URL="https://panel.shop.example", PANEL_API_KEY="ptla_" + "x" * 43)
    assert provisioner.environment == "production"


def test_a_live_stripe_key_is_never_sent_to_a_local_stand_in_even_in_development() -> None:
    with pytest.raises(ValidationError, match="STRIPE_API_BASE"):
        PaymentSettings(STRIPE_API_KEY="sk_live_51abc")


def test_a_service_started_in_production_with_a_default_exits_with_the_setting_named() -> None:
    started = subprocess.run(
        [sys.executable, "-c", "from order_service.bootstrap import create_app; create_app()"],
        env={"SPAWNPOINT_ENV": "production", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert started.returncode != 0
    assert "JWT_SECRET" in started.stderr and "production refuses development settings" in started.stderr
