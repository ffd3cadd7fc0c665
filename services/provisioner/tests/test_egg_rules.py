"""Unit tests of the pre-payment check of egg variables (``domain/egg_rules.py``)."""

from __future__ import annotations

import pytest

from provisioner.domain.egg_rules import check_environment, panel_input
from provisioner.domain.panel import Egg, EggVariable

pytestmark = pytest.mark.unit

PAPER = Egg(
    1,
    (
        EggVariable("MINECRAFT_VERSION", "latest", ("nullable", "string", "max:20"), "Minecraft Version"),
        EggVariable("SERVER_JARFILE", "server.jar", ("required", r"regex:/^([\w\d._-]+)(\.jar)$/"), "Server Jar File"),
        EggVariable("DL_PATH", "", ("nullable", "string"), "Download Path"),
        EggVariable("BUILD_NUMBER", "latest", ("required", "string", "max:20"), "Build Number"),
    ),
)
VALID = {"MINECRAFT_VERSION": "latest", "SERVER_JARFILE": "server.jar", "DL_PATH": "", "BUILD_NUMBER": "latest"}


def _problems(egg: Egg, env: dict[str, str]) -> list[tuple[str, str]]:
    return [(p.variable, p.rule) for p in check_environment(egg, env).problems]


def test_the_seeded_paper_egg_accepts_its_defaults() -> None:
    result = check_environment(PAPER, VALID)
    assert result.valid and not result.unchecked


def test_input_is_normalised_like_the_panel_trims_and_nulls() -> None:
    assert panel_input("  x  ") == "x"
    assert panel_input("   ") is None
    assert panel_input(None) is None


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"BUILD_NUMBER": ""}, ("BUILD_NUMBER", "required")),
        ({"BUILD_NUMBER": "   "}, ("BUILD_NUMBER", "required")),
        ({"BUILD_NUMBER": "x" * 21}, ("BUILD_NUMBER", "max")),
        ({"SERVER_JARFILE": "server.zip"}, ("SERVER_JARFILE", "regex")),
        ({"MINECRAFT_VERSION": "y" * 21}, ("MINECRAFT_VERSION", "max")),
    ],
)
def test_failures_name_the_variable_and_the_rule(change: dict[str, str], problem: tuple[str, str]) -> None:
    assert _problems(PAPER, {**VALID, **change}) == [problem]


def test_a_missing_variable_without_nullable_fails_its_type_rule() -> None:
    egg = Egg(1, (EggVariable("V", "", ("string", "max:20"), "Version"),))
    result = check_environment(egg, {})
    assert [(p.variable, p.rule) for p in result.problems] == [("V", "string")]
    assert result.problems[0].message == "The Version variable must be a string."
    assert result.problems[0].field == "environment.V"


@pytest.mark.parametrize(
    ("rules", "value", "ok"),
    [
        (("required", "integer"), "12", True),
        (("required", "integer"), "latest", False),
        (("required", "integer", "between:1,10"), "11", False),
        (("required", "numeric", "min:5"), "5.5", True),
        (("nullable", "string", "min:5"), "  abcd", False),  # trimmed to four characters, as the panel does
        (("nullable", "string", "min:5"), "", True),
        (("required", "alpha_dash", "max:32"), "My_World-1", True),
        (("required", "alpha_dash"), "my world", False),
        (("required", "alpha_num"), "abc123", True),
        (("required", "in:survival,creative"), "creative", True),
        (("required", "in:survival,creative"), "hardcore", False),
        (("required", "boolean"), "true", True),
        (("required", "boolean"), "yes", False),
        (("required", "digits_between:1,3"), "1234", False),
        (("required", "url"), "https://example.test/x.jar", True),
        (("required", "size:3"), "abc", True),
    ],
)
def test_rule_tokens(rules: tuple[str, ...], value: str, ok: bool) -> None:
    egg = Egg(1, (EggVariable("V", "", rules, "V"),))
    assert check_environment(egg, {"V": value}).valid is ok


def test_unknown_rules_are_reported_as_unchecked_never_as_failures() -> None:
    egg = Egg(1, (EggVariable("V", "", ("required", "starts_with:a"), "V"),))
    result = check_environment(egg, {"V": "zzz"})
    assert result.valid
    assert result.unchecked == ("V:starts_with:a",)
