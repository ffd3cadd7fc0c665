"""Checking an environment against an egg's variable rules, the way the panel will, before payment.

The panel validates the environment only when the server is created, which is after the customer paid.
This module evaluates the egg's Laravel rules on our side so that order-service can refuse a setting
the panel would refuse while the customer is still at the checkout (``POST /validate-settings``).

It mirrors the panel's input handling first (every string trimmed, ``""`` turned into null, every variable
present, null when missing: ``VariableValidatorService``), then the rule tokens the bundled eggs use:
``required nullable string integer numeric boolean min max between size regex alpha alpha_dash
alpha_num digits digits_between in url``. A token it does not know is reported as unchecked, never as a
failure: the panel stays the authority, and the provisioner still classifies its 422 if we miss one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlparse

from .panel import Egg, EggVariable

# Laravel's TrimStrings: whitespace plus the BOM and the zero-width space.
_TRIM = re.compile(r"^[\s\ufeff\u200b]+|[\s\ufeff\u200b]+$")
_NUMERIC = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_INTEGER = re.compile(r"^[+-]?\d+$")
_PHP_DELIMITED = re.compile(r"^(?P<delim>[^\w\s\\])(?P<body>.*)(?P=delim)(?P<flags>[imsxuUD]*)$", re.DOTALL)

KNOWN_RULES = frozenset(
    {
        "required",
        "nullable",
        "sometimes",
        "string",
        "integer",
        "numeric",
        "boolean",
        "min",
        "max",
        "between",
        "size",
        "regex",
        "alpha",
        "alpha_dash",
        "alpha_num",
        "digits",
        "digits_between",
        "in",
        "url",
    }
)


@dataclass(frozen=True)
class RuleProblem:
    variable: str
    rule: str
    message: str

    @property
    def field(self) -> str:
        """The panel's ``meta.source_field`` for this problem."""
        return f"environment.{self.variable}"


@dataclass(frozen=True)
class RuleCheck:
    problems: tuple[RuleProblem, ...]
    unchecked: tuple[str, ...]
    """``VARIABLE:token`` pairs whose rule this module cannot evaluate (the panel will)."""

    @property
    def valid(self) -> bool:
        return not self.problems


def panel_input(value: str | None) -> str | None:
    """What the panel's middleware makes of a value: trimmed, and ``""`` becomes null."""
    if value is None:
        return None
    trimmed = _TRIM.sub("", value)
    return trimmed or None


def check_environment(egg: Egg, environment: Mapping[str, str]) -> RuleCheck:
    """Every egg variable checked against its rules, as the panel will check the create request."""
    problems: list[RuleProblem] = []
    unchecked: list[str] = []
    for variable in egg.variables:
        value = panel_input(environment.get(variable.env_variable))
        found, skipped = _check_variable(variable, value)
        problems.extend(found)
        unchecked.extend(f"{variable.env_variable}:{token}" for token in skipped)
    return RuleCheck(tuple(problems), tuple(unchecked))


def _split(token: str) -> tuple[str, str]:
    name, _, argument = token.partition(":")
    return name.strip().lower(), argument


def _check_variable(variable: EggVariable, value: str | None) -> tuple[list[RuleProblem], list[str]]:
    tokens = [_split(t) for t in variable.rules if t.strip()]
    names = {name for name, _ in tokens}
    numeric_context = bool(names & {"integer", "numeric"})
    label = variable.display_name
    problems: list[RuleProblem] = []
    unchecked: list[str] = []

    def fail(rule: str, message: str) -> None:
        problems.append(RuleProblem(variable.env_variable, rule, message))

    if value is None:
        if "required" in names:
            fail("required", f"The {label} field is required.")
            return problems, unchecked
        if "nullable" in names:
            return problems, unchecked
    for name, argument in tokens:
        if name not in KNOWN_RULES:
            unchecked.append(f"{name}:{argument}" if argument else name)
            continue
        message = _evaluate(name, argument, value, numeric_context, label)
        if message is not None:
            fail(name, message)
    return problems, unchecked


def _size(value: str | None, numeric_context: bool) -> float:
    """Laravel's ``getSize``: the number itself under a numeric rule, else the length in characters."""
    if value is None:
        return 0.0
    if numeric_context and _NUMERIC.match(value):
        return float(value)
    return float(len(value))


def _unit(numeric_context: bool) -> str:
    return "" if numeric_context else " characters"


def _evaluate(name: str, argument: str, value: str | None, numeric_context: bool, label: str) -> str | None:
    """The failure message of one rule on one value, or None when it passes."""
    text = value or ""
    if name in ("required", "nullable", "sometimes"):
        return None
    if name == "string":
        return None if value is not None else f"The {label} must be a string."
    if name == "integer":
        return None if value is not None and _INTEGER.match(text) else f"The {label} must be an integer."
    if name == "numeric":
        return None if value is not None and _NUMERIC.match(text) else f"The {label} must be a number."
    if name == "boolean":
        return None if text in ("0", "1", "true", "false") else f"The {label} field must be true or false."
    if name in ("min", "max", "size"):
        limit = float(argument or 0)
        size = _size(value, numeric_context)
        unit = _unit(numeric_context)
        if name == "min" and size < limit:
            return f"The {label} must be at least {argument}{unit}."
        if name == "max" and size > limit:
            return f"The {label} must not be greater than {argument}{unit}."
        if name == "size" and size != limit:
            return f"The {label} must be {argument}{unit}."
        return None
    if name == "between":
        low, _, high = argument.partition(",")
        size = _size(value, numeric_context)
        if not float(low or 0) <= size <= float(high or 0):
            return f"The {label} must be between {low} and {high}{_unit(numeric_context)}."
        return None
    if name == "regex":
        return None if value is not None and _php_regex_matches(argument, text) else f"The {label} format is invalid."
    if name == "alpha":
        return (
            None
            if value is not None and re.fullmatch(r"[^\W\d_]+", text)
            else f"The {label} must only contain letters."
        )
    if name == "alpha_dash":
        ok = value is not None and re.fullmatch(r"[\w-]+", text) is not None
        return None if ok else f"The {label} must only contain letters, numbers, dashes and underscores."
    if name == "alpha_num":
        ok = value is not None and re.fullmatch(r"[^\W_]+", text) is not None
        return None if ok else f"The {label} must only contain letters and numbers."
    if name == "digits":
        ok = value is not None and text.isdigit() and len(text) == int(argument or 0)
        return None if ok else f"The {label} must be {argument} digits."
    if name == "digits_between":
        low, _, high = argument.partition(",")
        ok = value is not None and text.isdigit() and int(low or 0) <= len(text) <= int(high or 0)
        return None if ok else f"The {label} must be between {low} and {high} digits."
    if name == "in":
        allowed = [item.strip().strip('"') for item in argument.split(",")]
        return None if value is not None and text in allowed else f"The selected {label} is invalid."
    if name == "url":
        parsed = urlparse(text)
        ok = value is not None and bool(parsed.scheme) and bool(parsed.netloc)
        return None if ok else f"The {label} must be a valid URL."
    return None


def _php_regex_matches(pattern: str, value: str) -> bool:
    """``preg_match`` with a PCRE pattern such as ``/^([\\w\\d._-]+)(\\.jar)$/``, in Python's dialect.

    Patterns that Python cannot compile (or bracket delimiters) count as matching: the panel remains the
    judge of those."""
    match = _PHP_DELIMITED.match(pattern)
    if match is None:
        return True
    body, flags_text = match.group("body"), match.group("flags")
    flags = 0
    for letter, flag in (("i", re.IGNORECASE), ("m", re.MULTILINE), ("s", re.DOTALL), ("x", re.VERBOSE)):
        if letter in flags_text:
            flags |= flag
    try:
        compiled = re.compile(body, flags)
    except re.error:
        return True
    return compiled.search(value) is not None
