"""The token's optional display name (the OIDC ``name`` claim): kept cleaned and bounded on the principal,
and never a reason to refuse a token that is otherwise valid."""

from __future__ import annotations

import time

import jwt
import pytest

from spawnpoint_kit.auth import NAME_MAX_LENGTH, TokenVerifier, display_name, mint_token

pytestmark = pytest.mark.unit

SECRET = "test-secret-of-at-least-32-bytes-long"


def _signed(**claims: object) -> str:
    return jwt.encode({"sub": "alex", "exp": int(time.time()) + 60, **claims}, SECRET, algorithm="HS256")


def test_the_name_claim_reaches_the_principal() -> None:
    token = mint_token(SECRET, sub="alex", email="alex@example.test", name="Alex Doe")
    assert jwt.decode(token, SECRET, algorithms=["HS256"])["name"] == "Alex Doe", "the standard OIDC claim"
    assert TokenVerifier(SECRET).verify(token).name == "Alex Doe"


def test_a_token_without_a_name_has_none() -> None:
    assert TokenVerifier(SECRET).verify(mint_token(SECRET, sub="alex")).name is None


@pytest.mark.parametrize("claim", [42, ["Alex"], {"given": "Alex"}, None, "", "   ", "\u202e\x00\u200b"])
def test_a_name_that_is_not_one_is_ignored_not_refused(claim: object) -> None:
    principal = TokenVerifier(SECRET).verify(_signed(name=claim))
    assert principal.user_id == "alex" and principal.name is None


@pytest.mark.parametrize(
    ("claim", "kept"),
    [
        ("Alex\r\nBcc: evil@example.test", "Alex Bcc: evil@example.test"),
        ("  Jürgen \t Müller ", "Jürgen Müller"),
        ("\u202eAlex\x1b[31m", "Alex[31m"),
        ("مهرداد\u200cی", "مهرداد\u200cی"),
    ],
)
def test_control_and_format_characters_are_removed(claim: str, kept: str) -> None:
    assert display_name(claim) == kept


def test_a_long_name_is_cut_to_the_bound() -> None:
    assert display_name("A" * 5000) == "A" * NAME_MAX_LENGTH
    assert TokenVerifier(SECRET).verify(_signed(name="B" * 5000)).name == "B" * NAME_MAX_LENGTH
