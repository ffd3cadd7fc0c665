"""HTTP answers: Stripe-style JSON bodies, and a response that drops the connection.

A dropped connection must look like a network failure to the
client (no status line at all), so :class:`DroppedConnection` aborts the TCP transport instead of
answering; the ASGI entry point (see ``app.py``) puts the abort hook into the request scope because only
it sees the server's own ``send``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from stripe_fake.errors import StripeError

REQUEST_ID_SCOPE_KEY = "stripe_fake.request_id"
ABORT_SCOPE_KEY = "stripe_fake.abort_connection"

AbortHook = Callable[[], Awaitable[bool]]


def encode(body: Any) -> bytes:
    """Compact UTF-8 JSON for API answers.

    Stripe pretty-prints its API answers, but no client depends on that layout, and the indenting
    encoder is pure Python (several times slower). Webhook bodies, whose bytes do matter, are
    pretty-printed (see ``events.serialize``).
    """
    return json.dumps(body, ensure_ascii=False).encode("utf-8")


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON answer."""
    return Response(encode(body), status_code=status, headers=headers, media_type="application/json")


def error_response(error: StripeError, headers: dict[str, str] | None = None) -> Response:
    """A Stripe error answer."""
    merged = {**(headers or {}), **error.headers}
    return json_response(error.body(), error.status, merged)


def transport_aborter(send: Send) -> AbortHook | None:
    """A hook that aborts the connection behind uvicorn's ``send``, or ``None`` if not reachable.

    uvicorn's ``send`` is a bound method of its request cycle, which holds the asyncio transport. After
    aborting, the hook waits until uvicorn has noticed the disconnect so it does not log a missing
    response.
    """
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    abort = getattr(transport, "abort", None)
    if not callable(abort):
        return None

    async def hook() -> bool:
        abort()
        for _ in range(100):
            if getattr(cycle, "disconnected", True):
                break
            await asyncio.sleep(0)
        return True

    return hook


class DroppedConnection(Response):
    """Closes the TCP connection without any answer (a simulated network failure)."""

    def __init__(self) -> None:
        super().__init__(status_code=500)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        hook = scope.get(ABORT_SCOPE_KEY)
        if hook is not None and await hook():
            return
        fallback = StripeError(
            500, "Connection drop requested, but this server cannot abort connections.", type="api_error"
        )
        await error_response(fallback)(scope, receive, send)
