"""Production refuses development defaults, naming them; a token must expire (finding 9)."""

from __future__ import annotations

import jwt
import pytest
from pydantic import ValidationError

from spawnpoint_kit.auth import InvalidToken, TokenVerifier, mint_token
from spawnpoint_kit.settings import DEVELOPMENT_JWT_SECRET, CommonSettings

pytestmark = pytest.mark.unit

STRONG = "a-production-secret-of-at-least-thirty-two-characters"


def test_development_needs_no_configuration() -> None:
    settings = CommonSettings(_env_file=None)
    assert settings.environment == "development"
    assert settings.jwt_secret.get_secret_value() == DEVELOPMENT_JWT_SECRET


@pytest.mark.parametrize(("secret", "why"), [(DEVELOPMENT_JWT_SECRET, "development secret"), ("short", "32")])
def test_production_refuses_a_development_or_weak_jwt_secret_naming_it(secret: str, why: str) -> None:
    with pytest.raises(ValidationError) as refused:
        CommonSettings(SPAWNPOINT_ENV="production", JWT_SECRET=secret)
    assert "JWT_SECRET" in str(refused.value) and why in str(refused.value)
    assert DEVELOPMENT_JWT_SECRET not in str(refused.value), "the refused secret itself is never echoed"


def test_production_starts_with_settings_of_its_own() -> None:
    own = CommonSettings(SPAWNPOINT_ENV="production", JWT_SECRET=STRONG, BROKER_URL="amqp://shop:s3cret@mq:5672/")
    assert own.environment == "production"


def test_production_refuses_rabbitmqs_guest_account(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BROKER_URL", raising=False)  # the default, not the session's .run/env user
    with pytest.raises(ValidationError, match="BROKER_URL"):
        CommonSettings(SPAWNPOINT_ENV="production", JWT_SECRET=STRONG)


def test_a_refusal_never_echoes_the_secrets_it_was_given(monkeypatch: pytest.MonkeyPatch) -> None:
    """pydantic repeats a model's inputs in its errors; the settings of every service turn that off, so a
    refused start never prints a secret that was set correctly into the orchestrator's log."""
    monkeypatch.delenv("BROKER_URL", raising=False)
    with pytest.raises(ValidationError) as refused:
        CommonSettings(SPAWNPOINT_ENV="production", JWT_SECRET=STRONG)
    assert "BROKER_URL" in str(refused.value)
    assert STRONG[-16:] not in str(refused.value), "pydantic shows the ends of long inputs"


def test_a_token_without_exp_is_refused() -> None:
    forever = jwt.encode({"sub": "mallory", "roles": ["operator"]}, STRONG, algorithm="HS256")
    with pytest.raises(InvalidToken, match="exp"):
        TokenVerifier(STRONG).verify(forever)


def test_an_issuer_can_be_required() -> None:
    verifier = TokenVerifier(STRONG, issuer="https://login.shop.example")
    assert verifier.verify(mint_token(STRONG, sub="alice", issuer="https://login.shop.example")).user_id == "alice"
    with pytest.raises(InvalidToken):
        verifier.verify(mint_token(STRONG, sub="alice"))
    with pytest.raises(InvalidToken):
        verifier.verify(mint_token(STRONG, sub="alice", issuer="https://elsewhere.example"))
