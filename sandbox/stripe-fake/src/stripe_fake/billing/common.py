"""Parameter helpers the billing routes share: booleans, metadata updates, expansions, list filters."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stripe_fake.errors import invalid_request
from stripe_fake.params import metadata, opt_present, opt_str, str_list


def exclusive(params: Mapping[str, Any], first: str, second: str, prefix: str | None = None) -> None:
    """Refuse two mutually exclusive parameters, naming the second (works at the top level too)."""
    if opt_present(params, first) and opt_present(params, second):
        raise invalid_request(
            f"You may only specify one of these parameters: {first}, {second}.",
            f"{prefix}[{second}]" if prefix else second,
        )


def opt_bool(params: Mapping[str, Any], key: str, param: str | None = None) -> bool | None:
    """``true``/``false`` as the SDK sends booleans; absent or ``""`` is ``None``."""
    raw = opt_str(params, key, param)
    if raw is None:
        return None
    if raw not in ("true", "false"):
        raise invalid_request(f"Invalid boolean: {raw}", param or key)
    return raw == "true"


def updated_metadata(current: dict[str, str], params: Mapping[str, Any], key: str = "metadata") -> dict[str, str]:
    """Stripe's metadata update: merge keys, ``""`` as a value deletes the key, ``metadata=""`` clears all."""
    raw = params.get(key)
    if raw == "":
        return {}
    if not isinstance(raw, dict):
        return dict(current)
    merged = dict(current)
    merged.update(metadata(params, key))
    for name, value in raw.items():
        if value == "":
            merged.pop(name, None)
    return merged


def expand_paths(params: Mapping[str, Any], allowed: frozenset[str], *, in_list: bool = False) -> list[str]:
    """``expand[]`` checked against what this route can expand (``data.`` prefix on lists)."""
    paths = str_list(params, "expand")
    if in_list:
        paths = [p.removeprefix("data.") for p in paths]
    for path in paths:
        if path not in allowed:
            raise invalid_request(f"This property cannot be expanded ({path}).", "expand")
    return paths
