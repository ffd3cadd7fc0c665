"""``GET /orders/{id}/status``: the poll, and the lean path that serves it.

Polls are most of this service's traffic (every open order page, every few seconds), so well-formed
ones are answered by a small ASGI layer placed *outside* FastAPI's middleware stack: match the path,
check the bearer token (with the kit's ``PrincipalCache``, the one the routes' ``CurrentPrincipal``
uses), look the order up in the in-process cache, write the pre-encoded body or a 304. That costs
about 70 µs of Python per poll instead of about 110 µs through FastAPI's error, telemetry and
body-limit layers, the shared request middleware, routing and dependency injection (measured
in-process; see docs/status-api.md). The layer does what the shared middleware does for every request
(a caller's ``X-Correlation-ID`` taken only when it is a usable token, else replaced, and echoed; the
``http_requests_total`` and ``http_request_duration_seconds`` metrics; a logged 500 with the
correlation id instead of a traceback). Anything unusual (no token, a bad token, a malformed id, a
method other than GET) falls through to the documented FastAPI route (``api.py``), which answers with
the same functions and the service's usual error bodies, so the two paths cannot disagree.

Caching rules of the answer:
- ``ETag``: the hash of the body (strong). ``If-None-Match`` with it answers 304 with no body.
- ``Cache-Control: private, no-cache``: a browser may keep the answer but must revalidate each time,
  which its HTTP cache then does by itself with ``If-None-Match``.
- ``Retry-After``: the suggested seconds before the next poll (also ``poll_after_seconds`` in the body).
"""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any

from sqlalchemy.exc import DBAPIError
from starlette.types import ASGIApp, Receive, Scope, Send

from spawnpoint_kit.auth import InvalidToken, principals_of
from spawnpoint_kit.http import LATENCY, REQUESTS
from spawnpoint_kit.logs import get_logger, log_context
from spawnpoint_kit.messaging.wire import inbound_token

from ..deps import services_of
from ..service_layer.snapshot import Snapshot

log = get_logger(__name__)

STATUS_PATH = "/orders/{order_id}/status"
_STATUS_PATH = re.compile(r"^/orders/([0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12})/status$")

NOT_FOUND_BODY = json.dumps({"detail": "order not found"}).encode()
UNAVAILABLE_BODY = json.dumps({"detail": "the order status is temporarily unavailable; try again shortly"}).encode()
UNAVAILABLE_RETRY_AFTER = 5
UNAVAILABLE_ERRORS = (DBAPIError, OSError, TimeoutError)
"""The database is unreachable: 503 with Retry-After (an answer), not a 500 (a bug)."""


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 weak comparison of ``If-None-Match`` against our ETag (``*`` matches any)."""
    if not if_none_match:
        return False
    if if_none_match == etag:
        return True
    for candidate in if_none_match.split(","):
        tag = candidate.strip()
        if tag == "*" or tag.removeprefix("W/") == etag:
            return True
    return False


def poll_headers(snapshot: Snapshot) -> list[tuple[bytes, bytes]]:
    return [
        (b"etag", snapshot.etag.encode()),
        (b"cache-control", b"private, no-cache"),
        (b"retry-after", b"%d" % snapshot.poll_after),
        (b"vary", b"Authorization"),
    ]


def poll_answer(snapshot: Snapshot | None, if_none_match: str | None) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """(status code, headers, body) of a poll: 200 with the body, 304 when the client has it, or 404."""
    if snapshot is None:
        return 404, [(b"content-type", b"application/json")], NOT_FOUND_BODY
    headers = poll_headers(snapshot)
    if etag_matches(if_none_match, snapshot.etag):
        return 304, headers, b""
    return 200, [(b"content-type", b"application/json"), *headers], snapshot.body


def unavailable_answer() -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    return (
        503,
        [(b"content-type", b"application/json"), (b"retry-after", b"%d" % UNAVAILABLE_RETRY_AFTER)],
        UNAVAILABLE_BODY,
    )


class PollingFastPath:
    """ASGI layer answering well-formed polls before FastAPI (see the module docstring)."""

    def __init__(self, app: ASGIApp, owner: Any) -> None:
        self.app = app
        self._owner = owner  # the FastAPI application: its token checker and its services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        match = _STATUS_PATH.match(scope["path"])
        if match is None:
            await self.app(scope, receive, send)
            return
        authorization = if_none_match = None
        correlation: str | None = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value
            elif name == b"if-none-match":
                if_none_match = value
            elif name == b"x-correlation-id" or (correlation is None and name == b"x-request-id"):
                correlation = inbound_token(value) or correlation  # as the shared middleware takes it
        if authorization is None or authorization[:7].lower() != b"bearer ":
            await self.app(scope, receive, send)
            return
        try:
            principal = principals_of(self._owner).verify(authorization[7:].decode("latin-1").strip())
        except InvalidToken:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        correlation_id = correlation or str(uuid.uuid4())
        queries = services_of(self._owner).queries
        try:
            snapshot = await queries.visible(uuid.UUID(match[1]), principal)
        except UNAVAILABLE_ERRORS:
            code, headers, body = unavailable_answer()
        except Exception as exc:
            with log_context(correlation_id=correlation_id):
                log.exception("unhandled error", error=repr(exc))
            code, headers = 500, [(b"content-type", b"application/json")]
            body = json.dumps({"detail": "internal error", "correlation_id": correlation_id}).encode()
        else:
            code, headers, body = poll_answer(snapshot, if_none_match.decode("latin-1") if if_none_match else None)
        headers.append((b"x-correlation-id", correlation_id.encode("ascii")))
        if body:
            headers.append((b"content-length", b"%d" % len(body)))
        try:
            await send({"type": "http.response.start", "status": code, "headers": headers})
            await send({"type": "http.response.body", "body": body})
        finally:
            REQUESTS.labels("GET", STATUS_PATH, _CODES.get(code) or str(code)).inc()
            _LATENCY.observe(time.perf_counter() - started)


_CODES = {200: "200", 304: "304", 404: "404", 503: "503", 500: "500"}
_LATENCY = LATENCY.labels("GET", STATUS_PATH)
