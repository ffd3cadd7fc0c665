"""What may go on the wire, checked where a message is staged, never discovered by the relay.

AMQP 0-9-1 carries ``message_id``, ``correlation_id``, ``type``, routing keys and header *names* as short
strings: at most 255 bytes each once encoded. A value that breaks a limit cannot be published at all, and a
row that cannot be published would sit in the outbox for ever while its order waits (a paid order stranded
by a correlation id of 200 ``é``s was exactly that). So every outbox row is checked when it is staged:
``check_outgoing`` raises ``Unpublishable`` naming the field, in the transaction that tried to stage it,
where the error is visible and nothing was committed.

Inbound text is untrusted: ``inbound_token`` accepts a header value (a correlation id from a client) only
when it is short printable ASCII without spaces, and the caller replaces anything else.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

SHORTSTR_BYTES = 255
"""AMQP's limit for short strings (properties, routing keys, header names)."""

TOKEN_MAX = 200
"""Correlation ids and similar tokens: at most this many printable ASCII characters (fits any shortstr)."""

_TOKEN = re.compile(rf"[!-~]{{1,{TOKEN_MAX}}}")
"""Printable ASCII without spaces (0x21-0x7E), 1 to 200 characters."""

HEADER_VALUE_MAX = 4096
"""Longest string header value we stage (the broker would take more; nothing of ours needs it)."""


class Unpublishable(ValueError):
    """A message that could never be published as it is (a field over AMQP's limits or of the wrong kind)."""


def is_token(value: str) -> bool:
    """True for printable ASCII without spaces, 1 to ``TOKEN_MAX`` characters."""
    return _TOKEN.fullmatch(value) is not None


def inbound_token(raw: bytes | str | None) -> str | None:
    """A client-supplied id header as text we may propagate, or None when it is unusable (the caller then
    makes a fresh one). Never truncates: a cut id would silently join another flow's trail."""
    if raw is None:
        return None
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("ascii")
        except UnicodeDecodeError:
            return None
    value = raw.strip()
    return value if is_token(value) else None


def _shortstr(field: str, value: str, *, required: bool = True) -> None:
    if required and not value:
        raise Unpublishable(f"{field} is empty")
    if len(value.encode("utf-8")) > SHORTSTR_BYTES:
        raise Unpublishable(f"{field} is longer than {SHORTSTR_BYTES} bytes")


def _header_value(name: str, value: Any, depth: int = 0) -> None:
    if depth > 4:
        raise Unpublishable(f"header {name!r} is nested too deeply")
    if value is None or isinstance(value, bool | int | float):
        return
    if isinstance(value, str):
        if len(value) > HEADER_VALUE_MAX:
            raise Unpublishable(f"header {name!r} is longer than {HEADER_VALUE_MAX} characters")
        if "\x00" in value:
            raise Unpublishable(f"header {name!r} contains a NUL character")
        return
    if isinstance(value, list | tuple):
        for item in value:
            _header_value(name, item, depth + 1)
        return
    if isinstance(value, Mapping):
        check_headers(value, depth + 1)
        return
    raise Unpublishable(f"header {name!r} has a value of type {type(value).__name__}")


def check_headers(headers: Mapping[str, Any], depth: int = 0) -> None:
    for name, value in headers.items():
        if not isinstance(name, str):
            raise Unpublishable(f"header name {name!r} is not text")
        _shortstr(f"header name {name[:40]!r}", name)
        _header_value(name, value, depth)


def check_outgoing(
    *,
    routing_key: str,
    message_type: str,
    correlation_id: str | None,
    headers: Mapping[str, Any],
) -> None:
    """Raise ``Unpublishable`` unless every field of the message can go on the wire."""
    _shortstr("routing_key", routing_key)
    _shortstr("message_type", message_type)
    if correlation_id is not None and not is_token(correlation_id):
        raise Unpublishable("correlation_id must be 1 to 200 printable ASCII characters without spaces")
    check_headers(headers)


def publishable_headers(headers: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The headers that could go on the wire, and the names of those that could not (for copies of an
    incoming message, whose headers anyone may have set)."""
    kept: dict[str, Any] = {}
    dropped: list[str] = []
    for name, value in headers.items():
        try:
            check_headers({name: value})
        except Unpublishable:
            dropped.append(str(name)[:100])
            continue
        kept[name] = value
    return kept, dropped


def publishable_token(value: str | None) -> str | None:
    """``value`` if it is a token we may put on the wire, else None."""
    return value if value is not None and is_token(value) else None
