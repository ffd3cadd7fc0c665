"""The Laravel rule engine and PHP semantics on their own (no HTTP)."""

from __future__ import annotations

from typing import Any

import pytest

from panel_fake import php
from panel_fake.validation import CustomRule, RuleSpec, Sometimes, compile_pcre, snake, validate

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("value", "expected"),
    [(5, 5), ("5", 5), (" 7 ", 7), ("05", None), (5.0, 5), (5.5, None), (True, 1), (False, None), (None, None)],
)
def test_filter_int(value: Any, expected: int | None) -> None:
    assert php.filter_int(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1, True), ("1e3", True), (".5", True), (" 2 ", True), ("0x1A", False), (True, False), ("", False), ([], False)],
)
def test_is_numeric(value: Any, expected: bool) -> None:
    assert php.is_numeric(value) is expected


def test_messages_and_size_types() -> None:
    failures = validate(
        {"a": "abcdef", "b": 11, "c": [1, 2, 3], "d": "12"},
        [("a", "string|max:3"), ("b", "integer|max:10"), ("c", "array|max:2"), ("d", "numeric|between:20,30")],
    )
    assert [f.message for f in failures] == [
        "The a may not be greater than 3 characters.",
        "The b may not be greater than 10.",
        "The c may not have more than 2 items.",
        "The d must be between 20 and 30.",
    ]


def test_nullable_sometimes_and_bail() -> None:
    rules: list[tuple[str, RuleSpec]] = [
        ("x", "nullable|string|min:3"),
        ("y", "sometimes|integer"),
        ("z", ["required", "integer", "bail", CustomRule("exists", lambda v: False, presence=True)]),
        ("w", "integer|min:5"),
    ]
    failures = validate({"x": None, "z": "no", "w": "abc"}, rules)
    assert [(f.attribute, f.rule) for f in failures] == [("z", "integer"), ("w", "integer"), ("w", "min")]


def test_wildcards_move_to_the_end_and_keep_raw_names() -> None:
    failures = validate(
        {"list": [1, "a"], "after": 5},
        [("list.*", "string"), ("after", "string")],
    )
    assert [(f.attribute, f.message) for f in failures] == [
        ("after", "The after must be a string."),
        ("list.0", "The list.0 must be a string."),
    ]


def test_sometimes_appends_or_merges() -> None:
    data: dict[str, Any] = {"deploy": {"x": 1}}
    failures = validate(
        data,
        [("deploy", "array"), ("deploy.locations", "array")],
        sometimes=[Sometimes("deploy.locations", "present", lambda d: bool(d.get("deploy")))],
    )
    assert [(f.attribute, f.rule) for f in failures] == [("deploy.locations", "present")]


def test_snake_and_regex() -> None:
    assert snake("uuidShort") == "uuid_short"
    assert snake("feature_limits.databases") == "feature_limits.databases"
    assert compile_pcre(r"/^([\w\d._-]+)(\.jar)$/").search("server.jar")
    assert not compile_pcre(r"/^([\w\d._-]+)(\.jar)$/").search("server.zip")
    assert compile_pcre(r"/\A[\pL\pN_-]+\z/u").search("Dédié_1")
