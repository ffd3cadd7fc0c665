"""Pagination, Wings rules and build helpers on their own (no HTTP)."""

from __future__ import annotations

from typing import Any

import pytest

from panel_fake import errors, php
from panel_fake.pagination import window
from panel_fake.routes.application.server_build import validated_change
from panel_fake.validation import validate
from panel_fake.wings import WingsMode, WingsSimulator, parse_actions

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("per_page", "page", "expected"),
    [
        (None, None, (0, 50, 50, 1, 1)),
        ("2", "2", (2, 2, 2, 2, 3)),
        ("0", None, (0, 15, 15, 1, 1)),
        ("-3", "2", (0, None, -3, 2, 1)),
        ("2.5", "2", (2, 2, 2, 2, 2)),
        ("2", "99", (196, 2, 2, 99, 3)),
        ("2", "x", (0, 2, 2, 1, 3)),
    ],
)
def test_laravel_window(per_page: Any, page: Any, expected: tuple[int, int | None, int, int, int]) -> None:
    result = window(per_page, page, 5)
    assert (result.offset, result.limit, result.per_page, result.page, result.last_page) == expected


@pytest.mark.parametrize(
    ("per_page", "code"), [("abc", "TypeError"), ("10abc", "ErrorException"), (["1"], "TypeError")]
)
def test_laravel_window_errors(per_page: Any, code: str) -> None:
    with pytest.raises(errors.PanelError) as raised:
        window(per_page, None, 5)
    assert (raised.value.status, raised.value.code) == (500, code)


def test_wildcard_custom_attribute_names() -> None:
    failures = validate({"add": ["x"]}, [("add", "array"), ("add.*", "integer")], attributes={"add.*": "port"})
    assert [failure.message for failure in failures] == ["The port must be an integer."]


def test_wings_rules_first_match_wins() -> None:
    wings = WingsSimulator()
    wings.set_mode(1, WingsMode(kind="unreachable"))
    wings.set_mode(1, WingsMode(kind="error", status=500, actions=parse_actions(["delete"]), remaining=1))
    assert wings.call(1, "delete").status == 500
    assert wings.call(1, "delete").kind == "unreachable"  # the counted rule is used up
    assert wings.call(1, "create").kind == "unreachable"
    wings.set_mode(1, WingsMode(kind="ok"))
    assert wings.rules == {}
    assert parse_actions(["sync"]) == frozenset({"suspend", "unsuspend", "build"})
    with pytest.raises(ValueError, match="unknown Wings action"):
        parse_actions(["nope"])


def test_newer_filter_takes_actions_over() -> None:
    wings = WingsSimulator()
    wings.set_mode(1, WingsMode(kind="unreachable", actions=parse_actions(["suspend", "delete"])))
    wings.set_mode(1, WingsMode(kind="ok", actions=parse_actions(["delete"])))
    assert wings.call(1, "suspend").kind == "unreachable"
    assert wings.call(1, "delete").kind == "ok"
    assert [rule["actions"] for rule in wings.describe(1)] == [["delete"], ["suspend"]]


def test_validated_change_prefers_limits_over_legacy_fields() -> None:
    change = validated_change(
        {"allocation": 3, "memory": 1, "limits": {"memory": 2, "extra": 9}, "feature_limits": {"databases": 1}},
        pelican=False,
    )
    assert change.limits == {"memory": 2}
    assert (change.database_limit, change.allocation_limit, change.backup_limit) == (1, None, None)


@pytest.mark.parametrize(("value", "expected"), [(2048, 2048), (2048.5, 2049), ("-1.5", -2), ("7", 7), (True, 1)])
def test_db_store_int(value: Any, expected: int) -> None:
    assert php.db_store_int(value) == expected


def test_strict_equals() -> None:
    assert php.strict_equals(13, 13)
    assert not php.strict_equals("13", 13)
    assert not php.strict_equals(True, 1)
