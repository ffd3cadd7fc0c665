"""``spawnctl token``: the token it prints verifies with the configured secret and carries the claims asked
for, the display name (``--name``) among them, which e-mails greet the customer by."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from spawnctl.cli import app
from spawnpoint_kit.auth import Principal, verifier_from
from spawnpoint_kit.settings import CommonSettings

pytestmark = pytest.mark.unit


def _principal(*args: str) -> Principal:
    result = CliRunner().invoke(app, ["token", *args])
    assert result.exit_code == 0, result.output
    return verifier_from(CommonSettings()).verify(result.output.strip())


def test_a_token_with_a_name_carries_it_as_the_name_claim() -> None:
    principal = _principal("--sub", "alex", "--email", "alex@example.test", "--name", "Alex Doe")
    assert (principal.user_id, principal.email, principal.name) == ("alex", "alex@example.test", "Alex Doe")


def test_a_token_without_a_name_has_none() -> None:
    principal = _principal("--sub", "alex")
    assert principal.name is None
