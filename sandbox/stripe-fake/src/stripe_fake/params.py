"""Typed access to decoded form parameters, raising Stripe's errors on bad types.

Form encoding carries only strings, so every integer, hash or array is checked here with the same
messages Stripe uses (``Invalid integer: abc``, ``Received unknown parameter: x``). An empty string means
"not set", as in Stripe's API.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from stripe_fake.errors import (
    StripeError,
    invalid_enum,
    invalid_integer,
    invalid_request,
    missing_param,
    unknown_param,
)

METADATA_MAX_KEYS = 50
METADATA_MAX_KEY_LENGTH = 40
METADATA_MAX_VALUE_LENGTH = 500


def reject_unknown(params: Mapping[str, Any], allowed: Iterable[str], prefix: str | None = None) -> None:
    """Refuse any key not in ``allowed`` (Stripe does not silently ignore unknown parameters)."""
    allowed_set = set(allowed)
    for key in params:
        if key not in allowed_set:
            raise unknown_param(f"{prefix}[{key}]" if prefix else key)


def opt_str(params: Mapping[str, Any], key: str, param: str | None = None) -> str | None:
    """An optional string parameter; ``""`` counts as absent."""
    value = params.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise invalid_request("Invalid string: expected a string", param or key)
    return value


def req_str(params: Mapping[str, Any], key: str, param: str | None = None) -> str:
    """A required string parameter."""
    value = opt_str(params, key, param)
    if value is None:
        raise missing_param(param or key)
    return value


def opt_int(params: Mapping[str, Any], key: str, param: str | None = None, *, minimum: int | None = None) -> int | None:
    """An optional integer parameter, with Stripe's lower-bound message."""
    raw = opt_str(params, key, param)
    if raw is None:
        return None
    name = param or key
    try:
        value = int(raw.strip(), 10)
    except ValueError:
        raise invalid_integer(name, raw) from None
    if minimum is not None and value < minimum:
        raise invalid_request(f"This value must be greater than or equal to {minimum}.", name)
    return value


def opt_enum(params: Mapping[str, Any], key: str, allowed: list[str], param: str | None = None) -> str | None:
    """An optional enumerated string."""
    value = opt_str(params, key, param)
    if value is not None and value not in allowed:
        raise invalid_enum(param or key, value, allowed)
    return value


def opt_dict(params: Mapping[str, Any], key: str, param: str | None = None) -> dict[str, Any] | None:
    """An optional hash; ``""`` (unset) and absence give ``None``."""
    value = params.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, dict):
        raise invalid_request("Invalid hash", param or key)
    return value


def opt_list(params: Mapping[str, Any], key: str, param: str | None = None) -> list[Any] | None:
    """An optional array; a lone string is accepted as a one-element array (``expand=x``)."""
    value = params.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list):
        raise invalid_request("Invalid array", param or key)
    return value


def str_list(params: Mapping[str, Any], key: str, param: str | None = None) -> list[str]:
    """An array of strings (such as ``expand``), empty when absent."""
    items = opt_list(params, key, param) or []
    name = param or key
    for item in items:
        if not isinstance(item, str):
            raise invalid_request("Invalid array", name)
    return [str(item) for item in items]


def metadata(params: Mapping[str, Any], key: str = "metadata", param: str | None = None) -> dict[str, str]:
    """A metadata map checked against Stripe's limits; empty values unset their key."""
    name = param or key
    raw = opt_dict(params, key, name)
    if raw is None:
        return {}
    if len(raw) > METADATA_MAX_KEYS:
        raise invalid_request(
            f"Metadata can have up to {METADATA_MAX_KEYS} keys, but you passed in {len(raw)} keys.", name
        )
    result: dict[str, str] = {}
    for meta_key, value in raw.items():
        if not isinstance(value, str):
            raise invalid_request(
                f"Invalid value type: {{}} must be a string under {METADATA_MAX_VALUE_LENGTH} characters",
                f"{name}[{meta_key}]",
            )
        if "[" in meta_key or "]" in meta_key:
            raise invalid_request(
                f"Metadata keys can't contain square brackets ('[' or ']'). Invalid key: '{meta_key}'", name
            )
        if len(meta_key) > METADATA_MAX_KEY_LENGTH:
            raise invalid_request(
                f"Metadata keys can have up to {METADATA_MAX_KEY_LENGTH} characters, but you passed in a "
                f"key that is {len(meta_key)} characters. Invalid key: '{meta_key}'",
                name,
            )
        if len(value) > METADATA_MAX_VALUE_LENGTH:
            raise invalid_request(
                f"Metadata values can have up to {METADATA_MAX_VALUE_LENGTH} characters, but you passed "
                f"in a value that is {len(value)} characters. Invalid value: {value[:40]}…",
                f"{name}[{meta_key}]",
            )
        if value != "":
            result[meta_key] = value
    return result


def one_of(params: Mapping[str, Any], first: str, second: str, prefix: str) -> None:
    """Stripe refuses two mutually exclusive parameters given together."""
    if opt_present(params, first) and opt_present(params, second):
        raise invalid_request(
            f"You may only specify one of these parameters: {first}, {second}.", f"{prefix}[{second}]"
        )


def opt_present(params: Mapping[str, Any], key: str) -> bool:
    """Whether a parameter is set (present and not the empty "unset" string)."""
    value = params.get(key)
    return value is not None and value != ""


__all__ = [
    "StripeError",
    "metadata",
    "one_of",
    "opt_dict",
    "opt_enum",
    "opt_int",
    "opt_list",
    "opt_present",
    "opt_str",
    "reject_unknown",
    "req_str",
    "str_list",
]
