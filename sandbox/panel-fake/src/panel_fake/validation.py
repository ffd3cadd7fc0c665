"""A small Laravel validator: the rules, order, skipping logic and messages the panel uses.

Clients branch on ``meta.source_field`` and ``meta.rule`` and sometimes show ``detail``, and
the real panel reports *every* failed message in rule order (no ``bail`` except where the
panel asks for it). Reproducing Laravel's exact algorithm matters more than breadth:

* rules run attribute by attribute in the order given; wildcard attributes (``a.*``) are
  expanded against the data and, as in Laravel's rule parser, moved to the end;
* a non-implicit rule is skipped when the attribute is absent (or an empty string), when the
  attribute is ``nullable`` and null, or (``exists``/``unique``) when it already failed;
* validation of an attribute stops after a failed implicit rule (``required``, ``present``,
  ``required_with`` ...) or, with ``bail``, after any failure;
* messages come from the panel's ``resources/lang/en/validation.php``; attribute names are
  snake-cased with underscores turned into spaces, except wildcard expansions, which keep the
  raw dotted key.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from panel_fake import php

MISSING: Any = object()

IMPLICIT_RULES = frozenset(
    {
        "required",
        "present",
        "filled",
        "accepted",
        "required_with",
        "required_with_all",
        "required_without",
        "required_without_all",
        "required_if",
        "required_unless",
    }
)
NUMERIC_RULES = frozenset({"numeric", "integer", "decimal"})
SIZE_RULES = frozenset({"min", "max", "between", "size"})
_ALIASES = {"int": "integer", "bool": "boolean"}

MESSAGES: dict[str, str] = {
    "accepted": "The :attribute must be accepted.",
    "alpha": "The :attribute may only contain letters.",
    "alpha_dash": "The :attribute may only contain letters, numbers, and dashes.",
    "alpha_num": "The :attribute may only contain letters and numbers.",
    "array": "The :attribute must be an array.",
    "boolean": "The :attribute field must be true or false.",
    "digits": "The :attribute must be :digits digits.",
    "digits_between": "The :attribute must be between :min and :max digits.",
    "email": "The :attribute must be a valid email address.",
    "exists": "The selected :attribute is invalid.",
    "filled": "The :attribute field is required.",
    "in": "The selected :attribute is invalid.",
    "integer": "The :attribute must be an integer.",
    "not_in": "The selected :attribute is invalid.",
    "numeric": "The :attribute must be a number.",
    "present": "The :attribute field must be present.",
    "regex": "The :attribute format is invalid.",
    "required": "The :attribute field is required.",
    "required_with": "The :attribute field is required when :values is present.",
    "required_with_all": "The :attribute field is required when :values is present.",
    "required_without": "The :attribute field is required when :values is not present.",
    "required_without_all": "The :attribute field is required when none of :values are present.",
    "string": "The :attribute must be a string.",
    "unique": "The :attribute has already been taken.",
    "url": "The :attribute format is invalid.",
}
SIZE_MESSAGES: dict[str, dict[str, str]] = {
    "between": {
        "numeric": "The :attribute must be between :min and :max.",
        "string": "The :attribute must be between :min and :max characters.",
        "array": "The :attribute must have between :min and :max items.",
    },
    "max": {
        "numeric": "The :attribute may not be greater than :max.",
        "string": "The :attribute may not be greater than :max characters.",
        "array": "The :attribute may not have more than :max items.",
    },
    "min": {
        "numeric": "The :attribute must be at least :min.",
        "string": "The :attribute must be at least :min characters.",
        "array": "The :attribute must have at least :min items.",
    },
    "size": {
        "numeric": "The :attribute must be :size.",
        "string": "The :attribute must be :size characters.",
        "array": "The :attribute must contain :size items.",
    },
}


class UnknownRuleError(Exception):
    """A rule the validator has no method for; Laravel throws ``BadMethodCallException`` (a 500)."""


@dataclass(frozen=True)
class CustomRule:
    """A rule backed by a callable: database rules (``exists``, ``unique``) and rule objects.

    ``name`` is what ``meta.rule`` reports. ``presence`` marks ``exists``/``unique``, which
    Laravel skips when the attribute already has an error. ``message`` overrides the default
    text for ``name``.
    """

    name: str
    check: Callable[[Any], bool]
    message: str | None = None
    implicit: bool = False
    presence: bool = False


Rule = str | CustomRule
RuleSpec = str | CustomRule | Sequence[str | CustomRule]


@dataclass(frozen=True)
class Failure:
    """One failed message: becomes one error object in the 422 envelope."""

    attribute: str
    rule: str
    message: str


@dataclass(frozen=True)
class Sometimes:
    """Laravel's ``$validator->sometimes(attribute, rules, callback)``."""

    attribute: str
    rules: RuleSpec
    condition: Callable[[dict[str, Any]], bool]


# --------------------------------------------------------------------------- data access


def _child(container: Any, key: str) -> Any:
    if isinstance(container, dict):
        return container.get(key, MISSING)
    if isinstance(container, list) and key.isdigit():
        index = int(key)
        return container[index] if index < len(container) else MISSING
    return MISSING


def get(data: Any, path: str) -> Any:
    """``Arr::get`` that tells a missing key (``MISSING``) from a null value."""
    current = data
    for segment in path.split("."):
        current = _child(current, segment)
        if current is MISSING:
            return MISSING
    return current


def has(data: Any, path: str) -> bool:
    """``Arr::has``: every segment of the path exists."""
    return get(data, path) is not MISSING


def _keys(container: Any) -> list[str]:
    if isinstance(container, dict):
        return [str(key) for key in container]
    if isinstance(container, list):
        return [str(index) for index in range(len(container))]
    return []


def expand_wildcard(pattern: str, data: Any) -> list[str]:
    """The concrete attributes a ``a.*.b`` pattern stands for, given the data."""
    segments = pattern.split(".")
    results: list[str] = []

    def walk(container: Any, index: int, prefix: list[str]) -> None:
        if index == len(segments):
            results.append(".".join(prefix))
            return
        segment = segments[index]
        if segment == "*":
            for key in _keys(container):
                walk(_child(container, key), index + 1, [*prefix, key])
            return
        if index > 0 and "*" in segments[:index] and not php.is_array(container):
            return
        walk(_child(container, segment), index + 1, [*prefix, segment])

    if "*" not in segments:
        return [pattern]
    walk(data, 0, [])
    return results


# --------------------------------------------------------------------------- rule parsing


def parse_rule(rule: Rule) -> tuple[str, list[str]]:
    """Split ``"between:1,191"`` into ``("between", ["1", "191"])``."""
    if isinstance(rule, CustomRule):
        return rule.name, []
    if ":" in rule:
        name, raw = rule.split(":", 1)
    else:
        name, raw = rule, ""
    name = snake(name.strip()) if name.strip() else ""
    name = _ALIASES.get(name, name)
    if not raw:
        return name, []
    if name in ("regex", "not_regex"):
        return name, [raw]
    return name, [part.strip() for part in raw.split(",")]


def explode_rules(spec: RuleSpec) -> list[Rule]:
    """Pipe strings become lists, except a string that *is* a regex rule (Laravel keeps it whole)."""
    if isinstance(spec, CustomRule):
        return [spec]
    if isinstance(spec, str):
        if spec == "":
            return []
        if spec.startswith(("regex:", "not_regex:")):
            return [spec]
        return [part for part in spec.split("|") if part != ""]
    result: list[Rule] = []
    for item in spec:
        if isinstance(item, str) and item == "":
            continue
        result.append(item)
    return result


def snake(value: str) -> str:
    """Laravel ``Str::snake``."""
    if value.islower() and " " not in value:
        return value
    words = re.sub(r"\s+", "", " ".join(word[:1].upper() + word[1:] for word in value.split(" ")))
    return re.sub(r"(.)(?=[A-Z])", r"\1_", words).lower()


# --------------------------------------------------------------------------- PCRE


_UNICODE_CLASSES = {
    "L": "A-Za-z\\u00aa\\u00b5\\u00ba\\u00c0-\\u00d6\\u00d8-\\u00f6\\u00f8-\\u02ff\\u0370-\\u1fff\\u2c00-\\ud7ff",
    "N": "0-9\\u00b2\\u00b3\\u00b9\\u00bc-\\u00be\\u0660-\\u0669\\u06f0-\\u06f9\\u0966-\\u096f",
    "M": "\\u0300-\\u036f\\u0483-\\u0489\\u0591-\\u05bd\\u0900-\\u0903",
}


def _translate_pcre(body: str) -> str:
    """Rewrite the few PCRE escapes Python's ``re`` spells differently (approximating ``\\p{..}``)."""
    out: list[str] = []
    index = 0
    in_class = False
    while index < len(body):
        char = body[index]
        if char == "\\" and index + 1 < len(body):
            nxt = body[index + 1]
            if nxt == "z":
                out.append(r"\Z")
            elif nxt == "Z":
                out.append(r"(?=\n?\Z)")
            elif nxt == "h":
                out.append(r" \t" if in_class else r"[ \t]")
            elif nxt in "pP" and index + 2 < len(body):
                letter = body[index + 2].strip("{}") or "L"
                step = 3
                if body[index + 2] == "{":
                    close = body.find("}", index + 2)
                    letter = body[index + 3 : close][:1] if close > 0 else "L"
                    step = (close - index + 1) if close > 0 else 3
                ranges = _UNICODE_CLASSES.get(letter, _UNICODE_CLASSES["L"])
                if in_class:
                    out.append(ranges)
                else:
                    out.append(f"[{'^' if nxt == 'P' else ''}{ranges}]")
                index += step
                continue
            else:
                out.append(char + nxt)
            index += 2
            continue
        if char == "[" and not in_class:
            in_class = True
        elif char == "]" and in_class:
            in_class = False
        out.append(char)
        index += 1
    return "".join(out)


@functools.lru_cache(maxsize=512)
def compile_pcre(pattern: str) -> re.Pattern[str]:
    """Turn a PHP ``/body/flags`` pattern into a Python regex with the same meaning."""
    if len(pattern) < 2:
        raise UnknownRuleError(f"invalid regex {pattern!r}")
    delimiter = pattern[0]
    closing = {"(": ")", "{": "}", "[": "]", "<": ">"}.get(delimiter, delimiter)
    end = pattern.rfind(closing)
    if end <= 0:
        raise UnknownRuleError(f"invalid regex {pattern!r}")
    body, modifiers = pattern[1:end], pattern[end + 1 :]
    flags = 0 if "u" in modifiers else re.ASCII
    if "i" in modifiers:
        flags |= re.IGNORECASE
    if "m" in modifiers:
        flags |= re.MULTILINE
    if "s" in modifiers:
        flags |= re.DOTALL
    if "x" in modifiers:
        flags |= re.VERBOSE
    try:
        return re.compile(_translate_pcre(body), flags)
    except re.error as exc:
        raise UnknownRuleError(f"invalid regex {pattern!r}: {exc}") from exc


# --------------------------------------------------------------------------- the validator


@dataclass(frozen=True)
class _Parsed:
    """A rule parsed once: Laravel re-parses on every check, which is needlessly slow here."""

    rule: Rule
    name: str
    params: list[str]
    implicit: bool
    presence: bool


@functools.lru_cache(maxsize=4096)
def _parse_string_rule(rule: str) -> tuple[str, tuple[str, ...]]:
    name, params = parse_rule(rule)
    return name, tuple(params)


@functools.lru_cache(maxsize=1024)
def _parse_spec(spec: str | CustomRule | tuple[str | CustomRule, ...]) -> tuple[_Parsed, ...]:
    return tuple(_parse(rule) for rule in explode_rules(spec))


def parse_spec(spec: RuleSpec) -> tuple[_Parsed, ...]:
    """Parsed rules of one attribute, cached (rule tables are built once per panel state)."""
    key = spec if isinstance(spec, str | CustomRule) else tuple(spec)
    return _parse_spec(key)


def _parse(rule: Rule) -> _Parsed:
    if isinstance(rule, CustomRule):
        return _Parsed(rule, rule.name, [], rule.implicit, rule.presence or rule.name in ("exists", "unique"))
    name, params = _parse_string_rule(rule)
    return _Parsed(rule, name, list(params), name in IMPLICIT_RULES, name in ("exists", "unique"))


class Validator:
    """Runs an ordered rule table over data and collects Laravel-ordered failures."""

    def __init__(
        self,
        data: dict[str, Any],
        rules: Iterable[tuple[str, RuleSpec]],
        *,
        sometimes: Iterable[Sometimes] = (),
        attributes: dict[str, str] | None = None,
    ) -> None:
        self.data = data
        self.custom_attributes = attributes or {}
        # concrete attribute of a wildcard expansion -> its pattern ("add_allocations.0" -> "add_allocations.*")
        self.implicit_attributes: dict[str, str] = {}
        self.table: dict[str, list[_Parsed]] = self._explode(rules)
        for extra in sometimes:
            if extra.condition(data):
                for key, added in self._explode([(extra.attribute, extra.rules)]).items():
                    self.table.setdefault(key, []).extend(added)
        self._names: dict[str, frozenset[str]] = {
            attribute: frozenset(parsed.name for parsed in rules) for attribute, rules in self.table.items()
        }
        self.failures: list[Failure] = []
        self._failed: dict[str, list[str]] = {}

    def _explode(self, rules: Iterable[tuple[str, RuleSpec]]) -> dict[str, list[_Parsed]]:
        table: dict[str, list[_Parsed]] = {}
        wildcard: list[tuple[str, list[_Parsed]]] = []
        for attribute, spec in rules:
            exploded = list(parse_spec(spec))
            if "*" in attribute:
                for concrete in expand_wildcard(attribute, self.data):
                    self.implicit_attributes[concrete] = attribute
                    wildcard.append((concrete, exploded))
            else:
                table[attribute] = list(exploded)
        for concrete, exploded in wildcard:
            table.setdefault(concrete, []).extend(exploded)
        return table

    # -- public API

    def validate(self) -> list[Failure]:
        for attribute, rules in self.table.items():
            raw = get(self.data, attribute)
            for parsed in rules:
                self._validate_attribute(attribute, parsed, raw)
                if self._should_stop(attribute, rules):
                    break
        return self.failures

    # -- Laravel's validateAttribute and helpers

    def _has_rule(self, attribute: str, names: Iterable[str]) -> bool:
        found = self._names.get(attribute)
        return found is not None and not found.isdisjoint(names)

    def _should_stop(self, attribute: str, rules: list[_Parsed]) -> bool:
        failed = self._failed.get(attribute)
        if not failed:
            return False
        if self._has_rule(attribute, ("bail",)):
            return True
        implicit_names = {parsed.name for parsed in rules if parsed.implicit}
        return any(name in implicit_names for name in failed)

    def _passes_optional_check(self, attribute: str, raw: Any) -> bool:
        if not self._has_rule(attribute, ("sometimes",)):
            return True
        if attribute in self.data:
            return True
        # Laravel looks the attribute up in Arr::dot(data): a non-empty nested array is not a
        # key of its own there, so ``sometimes`` treats it as absent.
        if raw is MISSING:
            return False
        return not (php.is_array(raw) and len(raw) > 0)

    def _is_validatable(self, parsed: _Parsed, attribute: str, raw: Any) -> bool:
        value = None if raw is MISSING else raw
        if isinstance(value, str) and value.strip() == "":
            present_or_implicit = parsed.implicit
        else:
            present_or_implicit = raw is not MISSING or parsed.implicit
        if not present_or_implicit:
            return False
        if not self._passes_optional_check(attribute, raw):
            return False
        if not parsed.implicit and raw is None and self._has_rule(attribute, ("nullable",)):
            return False
        return not (parsed.presence and attribute in self._failed)

    def _validate_attribute(self, attribute: str, parsed: _Parsed, raw: Any) -> None:
        if parsed.name == "":
            return
        if not self._is_validatable(parsed, attribute, raw):
            return
        value = None if raw is MISSING else raw
        rule = parsed.rule
        if isinstance(rule, CustomRule):
            if not rule.check(value):
                self._add_failure(attribute, parsed.name, parsed.params, rule.message)
            return
        method = _RULES.get(parsed.name)
        if method is None:
            raise UnknownRuleError(f"Method Illuminate\\Validation\\Validator::validate{parsed.name} does not exist.")
        if not method(self, attribute, value, parsed.params):
            self._add_failure(attribute, parsed.name, parsed.params, None)

    # -- messages

    def display_name(self, attribute: str) -> str:
        """``getDisplayableAttribute``: a custom name of the attribute or of its wildcard pattern,
        else the raw key for wildcard expansions, else the snake-cased name with spaces."""
        if attribute in self.custom_attributes:
            return self.custom_attributes[attribute]
        pattern = self.implicit_attributes.get(attribute)
        if pattern is not None:
            return self.custom_attributes.get(pattern, attribute)
        return snake(attribute).replace("_", " ")

    def _attribute_type(self, attribute: str) -> str:
        if self._has_rule(attribute, NUMERIC_RULES):
            return "numeric"
        if self._has_rule(attribute, ("array",)):
            return "array"
        return "string"

    def _add_failure(self, attribute: str, name: str, params: list[str], override: str | None) -> None:
        if override is not None:
            template = override
        elif name in SIZE_RULES:
            template = SIZE_MESSAGES[name][self._attribute_type(attribute)]
        else:
            template = MESSAGES.get(name, f"validation.{name}")
        message = self._replace(template, attribute, name, params)
        self.failures.append(Failure(attribute=attribute, rule=name, message=message))
        self._failed.setdefault(attribute, []).append(name)

    def _replace(self, template: str, attribute: str, name: str, params: list[str]) -> str:
        text = template
        if name in ("min",):
            text = text.replace(":min", params[0] if params else "")
        elif name in ("max",):
            text = text.replace(":max", params[0] if params else "")
        elif name in ("between", "digits_between"):
            text = text.replace(":min", params[0] if params else "").replace(
                ":max", params[1] if len(params) > 1 else ""
            )
        elif name == "size":
            text = text.replace(":size", params[0] if params else "")
        elif name == "digits":
            text = text.replace(":digits", params[0] if params else "")
        elif name.startswith("required_with"):
            text = text.replace(":values", " / ".join(self.display_name(param) for param in params))
        elif name == "in":
            text = text.replace(":values", ", ".join(params))
        display = self.display_name(attribute)
        text = text.replace(":ATTRIBUTE", display.upper())
        text = text.replace(":Attribute", display[:1].upper() + display[1:])
        return text.replace(":attribute", display)

    # -- size

    def size_of(self, attribute: str, value: Any) -> float:
        if php.is_numeric(value) and self._has_rule(attribute, NUMERIC_RULES):
            return php.to_number(value)
        if isinstance(value, dict | list):
            return float(len(value))
        return float(php.mb_strlen(value))


# --------------------------------------------------------------------------- rule methods

RuleMethod = Callable[[Validator, str, Any, list[str]], bool]


def _required(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, str) and value.strip() == "":
        return False
    return not (isinstance(value, dict | list) and len(value) < 1)


def _v_required(v: Validator, attribute: str, value: Any, params: list[str]) -> bool:
    return _required(value)


def _v_present(v: Validator, attribute: str, value: Any, params: list[str]) -> bool:
    return has(v.data, attribute)


def _v_required_with(v: Validator, attribute: str, value: Any, params: list[str]) -> bool:
    others_present = any(_required(None if (got := get(v.data, p)) is MISSING else got) for p in params)
    return _required(value) if others_present else True


def _v_required_with_all(v: Validator, attribute: str, value: Any, params: list[str]) -> bool:
    all_present = all(_required(None if (got := get(v.data, p)) is MISSING else got) for p in params)
    return _required(value) if all_present else True


def _v_required_without(v: Validator, attribute: str, value: Any, params: list[str]) -> bool:
    any_missing = any(not _required(None if (got := get(v.data, p)) is MISSING else got) for p in params)
    return _required(value) if any_missing else True


def _v_filled(v: Validator, attribute: str, value: Any, params: list[str]) -> bool:
    return _required(value) if has(v.data, attribute) else True


def _v_pass(v: Validator, attribute: str, value: Any, params: list[str]) -> bool:
    return True


def _v_string(v: Validator, attribute: str, value: Any, params: list[str]) -> bool:
    return isinstance(value, str)


def _v_integer(v: Validator, attribute: str, value: Any, params: list[str]) -> bool:
    return php.filter_int(value) is not None


def _v_numeric(v: Validator, attribute: str, value: Any, params: list[str]) -> bool:
    return php.is_numeric(value)


def _v_boolean(v: Validator, attribute: str, value: Any, params: list[str]) -> bool:
    if isinstance(value, bool):
        return True
    if type(value) is int:
        return value in (0, 1)
    return isinstance(value, str) and value in ("0", "1")


def _v_array(v: Validator, attribute: str, value: Any, params: list[str]) -> bool:
    if not isinstance(value, dict | list):
        return False
    if not params:
        return True
    return all(key in params for key in _keys(value))


def _param_number(params: list[str], index: int) -> float:
    try:
        return float(params[index])
    except (IndexError, ValueError) as exc:
        raise UnknownRuleError(f"Validation rule requires at least {index + 1} parameters.") from exc


def _v_min(v: Validator, attribute: str, value: Any, params: list[str]) -> bool:
    return v.size_of(attribute, value) >= _param_number(params, 0)


def _v_max(v: Validator, attribute: str, value: Any, params: list[str]) -> bool:
    return v.size_of(attribute, value) <= _param_number(params, 0)


def _v_between(v: Validator, attribute: str, value: Any, params: list[str]) -> bool:
    size = v.size_of(attribute, value)
    return _param_number(params, 0) <= size <= _param_number(params, 1)


def _v_size(v: Validator, attribute: str, value: Any, params: list[str]) -> bool:
    return v.size_of(attribute, value) == _param_number(params, 0)


def _v_regex(v: Validator, attribute: str, value: Any, params: list[str]) -> bool:
    if not isinstance(value, str) and not php.is_numeric(value):
        return False
    if not params:
        raise UnknownRuleError("Validation rule regex requires at least 1 parameters.")
    return compile_pcre(params[0]).search(php.to_string(value)) is not None


def _v_in(v: Validator, attribute: str, value: Any, params: list[str]) -> bool:
    if isinstance(value, dict | list):
        if v._has_rule(attribute, ("array",)):
            return all(
                any(php.loose_string_equals(php.to_string(item), param) for param in params)
                for item in (value.values() if isinstance(value, dict) else value)
            )
        return False
    text = php.to_string(value)
    return any(php.loose_string_equals(text, param) for param in params)


def _v_not_in(v: Validator, attribute: str, value: Any, params: list[str]) -> bool:
    return not _v_in(v, attribute, value, params)


def _is_word_char(char: str, extra: str) -> bool:
    return char.isalnum() or char in extra or unicodedata.category(char).startswith("M")


def _v_alpha_dash(v: Validator, attribute: str, value: Any, params: list[str]) -> bool:
    if not isinstance(value, str) and not php.is_numeric(value):
        return False
    text = php.to_string(value)
    return text != "" and all(_is_word_char(char, "_-") for char in text)


def _v_alpha_num(v: Validator, attribute: str, value: Any, params: list[str]) -> bool:
    if not isinstance(value, str) and not php.is_numeric(value):
        return False
    text = php.to_string(value)
    return text != "" and all(_is_word_char(char, "") for char in text)


def _v_alpha(v: Validator, attribute: str, value: Any, params: list[str]) -> bool:
    return isinstance(value, str) and value != "" and all(char.isalpha() for char in value)


def _v_digits_between(v: Validator, attribute: str, value: Any, params: list[str]) -> bool:
    if isinstance(value, dict | list):
        return False
    text = php.to_string(value)
    return text.isdigit() and text.isascii() and _param_number(params, 0) <= len(text) <= _param_number(params, 1)


def _v_digits(v: Validator, attribute: str, value: Any, params: list[str]) -> bool:
    if isinstance(value, dict | list):
        return False
    text = php.to_string(value)
    return text.isdigit() and text.isascii() and len(text) == _param_number(params, 0)


_URL_SCHEMES = frozenset({"http", "https", "ftp", "ftps", "sftp", "ssh", "git", "svn", "ws", "wss", "file"})


def _v_url(v: Validator, attribute: str, value: Any, params: list[str]) -> bool:
    if not isinstance(value, str) or any(char.isspace() for char in value):
        return False
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    allowed = set(params) if params else _URL_SCHEMES
    return parts.scheme.lower() in allowed and bool(parts.netloc)


_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+$")


def _v_email(v: Validator, attribute: str, value: Any, params: list[str]) -> bool:
    if not isinstance(value, str):
        return False
    if _EMAIL_RE.match(value) is None:
        return False
    local, _, domain = value.rpartition("@")
    return not (local.startswith(".") or local.endswith(".") or ".." in value or domain.startswith("."))


_RULES: dict[str, RuleMethod] = {
    "required": _v_required,
    "present": _v_present,
    "filled": _v_filled,
    "required_with": _v_required_with,
    "required_with_all": _v_required_with_all,
    "required_without": _v_required_without,
    "sometimes": _v_pass,
    "nullable": _v_pass,
    "bail": _v_pass,
    "string": _v_string,
    "integer": _v_integer,
    "numeric": _v_numeric,
    "boolean": _v_boolean,
    "array": _v_array,
    "min": _v_min,
    "max": _v_max,
    "between": _v_between,
    "size": _v_size,
    "regex": _v_regex,
    "in": _v_in,
    "not_in": _v_not_in,
    "alpha": _v_alpha,
    "alpha_dash": _v_alpha_dash,
    "alpha_num": _v_alpha_num,
    "digits": _v_digits,
    "digits_between": _v_digits_between,
    "url": _v_url,
    "email": _v_email,
}

SUPPORTED_RULES = frozenset(_RULES)


def validate(
    data: dict[str, Any],
    rules: Iterable[tuple[str, RuleSpec]],
    *,
    sometimes: Iterable[Sometimes] = (),
    attributes: dict[str, str] | None = None,
) -> list[Failure]:
    """Validate ``data`` and return the failures in the order the real panel reports them."""
    return Validator(data, rules, sometimes=sometimes, attributes=attributes).validate()
