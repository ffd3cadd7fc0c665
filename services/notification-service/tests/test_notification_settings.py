"""Development needs no configuration; production refuses every development default, naming each, and
never says the SMTP password."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from notification_service.config import Settings

pytestmark = pytest.mark.unit

PRODUCTION: dict[str, Any] = {
    "SPAWNPOINT_ENV": "production",
    "JWT_SECRET": "a-production-secret-of-at-least-thirty-two-characters",
    "BROKER_URL": "amqps://spawnpoint:s3cret@rabbit.shop.example:5671/spawnpoint",
}


def test_development_starts_with_no_configuration() -> None:
    assert Settings().environment == "development"


def test_production_refuses_development_defaults_naming_each(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BROKER_URL", raising=False)
    with pytest.raises(ValidationError) as refused:
        Settings(SPAWNPOINT_ENV="production", SMTP_PASSWORD="relay-password-123")
    for name in ("SMTP_STARTTLS", "PANEL_URL", "PANEL_API_KEY", "MAIL_FROM", "JWT_SECRET"):
        assert name in str(refused.value)
    assert "relay-password-123" not in str(refused.value)


def test_production_with_its_own_settings_starts() -> None:
    settings = Settings(
        **PRODUCTION,
        SMTP_STARTTLS="true",
        SMTP_HOST="smtp.shop.example",
        SMTP_PASSWORD="relay-password-123",
        PANEL_URL="https://panel.shop.example",
        PANEL_API_KEY="ptla_live_key",
        MAIL_FROM="Shop <no-reply@shop.example>",
        MAIL_MESSAGE_ID_DOMAIN="mail.shop.example",
    )
    assert settings.environment == "production"
    assert "relay-password-123" not in repr(settings)


def test_the_test_hook_is_refused_in_production() -> None:
    with pytest.raises(ValidationError, match="NOTIFICATION_TEST_PAUSE_AFTER_ACCEPT"):
        Settings(
            **PRODUCTION,
            SMTP_STARTTLS="true",
            PANEL_URL="https://panel.shop.example",
            PANEL_API_KEY="ptla_live_key",
            MAIL_FROM="Shop <no-reply@shop.example>",
            MAIL_MESSAGE_ID_DOMAIN="mail.shop.example",
            NOTIFICATION_TEST_PAUSE_AFTER_ACCEPT="a@b.test=/tmp/x",
        )
