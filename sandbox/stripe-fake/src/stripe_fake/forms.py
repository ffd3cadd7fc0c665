"""Decoding of Stripe's form encoding (``application/x-www-form-urlencoded`` with bracket paths).

The SDK flattens nested parameters into keys such as ``line_items[0][price_data][unit_amount]`` and
``expand[0]``; over the wire the brackets may be percent-encoded (``expand%5B0%5D``). Stripe rebuilds the
nested structure on its side, and so does this module: URL-decode keys and values, split each key into
its bracket path, build nested dicts, then turn every dict whose keys are all indices into a list.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl

from stripe_fake.errors import StripeError, invalid_request

Params = dict[str, Any]
"""Decoded parameters: nested ``dict``/``list`` whose leaves are ``str``."""

_WELL_FORMED_TAIL = re.compile(r"(?:\[[^\[\]]*\])*")
_SEGMENT = re.compile(r"\[([^\[\]]*)\]")


def split_key(key: str) -> list[str]:
    """Split ``a[b][0][]`` into ``["a", "b", "0", ""]``.

    A tail that is not a clean sequence of ``[segment]`` (for example a metadata key that itself
    contains brackets, ``metadata[a[b]]``) becomes one segment holding everything between the outer
    brackets, so the metadata validation can report it instead of the decoder failing obscurely.
    """
    start = key.find("[")
    if start <= 0:
        return [key]
    base, tail = key[:start], key[start:]
    if _WELL_FORMED_TAIL.fullmatch(tail):
        return [base, *_SEGMENT.findall(tail)]
    if tail.endswith("]"):
        return [base, tail[1:-1]]
    return [key]


def decode_pairs(pairs: Iterable[tuple[str, str]]) -> Params:
    """Build the nested parameter tree from decoded ``(key, value)`` pairs."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        path = split_key(key)
        node: dict[str, Any] = root
        for depth, segment in enumerate(path):
            name = str(_next_index(node)) if segment == "" else segment
            last = depth == len(path) - 1
            if last:
                if isinstance(node.get(name), dict):
                    raise _shape_error(path, depth, "Invalid string")
                node[name] = value
                break
            child = node.get(name)
            if child is None:
                child = {}
                node[name] = child
            elif not isinstance(child, dict):
                raise _shape_error(path, depth, "Invalid hash")
            node = child
    return _listify(root)


def decode_form(raw: bytes | str) -> Params:
    """Decode a form body or query string into nested parameters."""
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    try:
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=False)
    except ValueError as exc:  # pragma: no cover - parse_qsl is lenient without strict_parsing
        raise invalid_request(f"Invalid request body: {exc}") from exc
    return decode_pairs(pairs)


def _next_index(node: dict[str, Any]) -> int:
    """Index for an empty ``[]`` segment: append after the existing indices."""
    return sum(1 for k in node if k.isdigit())


def _shape_error(path: list[str], depth: int, message: str) -> StripeError:
    param = path[0] + "".join(f"[{p}]" for p in path[1 : depth + 1])
    return invalid_request(message, param)


def _listify(node: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in node.items():
        out[key] = _convert(value)
    return out


def _convert(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    if value and all(k.isdigit() for k in value):
        return [_convert(value[k]) for k in sorted(value, key=int)]
    return {k: _convert(v) for k, v in value.items()}


def param_name(*parts: str | int) -> str:
    """Render a parameter path the way Stripe names it in errors: ``line_items[0][quantity]``."""
    head, *rest = parts
    return str(head) + "".join(f"[{p}]" for p in rest)
