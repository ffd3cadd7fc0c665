"""Application factory: the FastAPI app serving the fake over real HTTP.

The app class adds, at the ASGI entry point, what must see every request before FastAPI does: a
``Request-Id`` on every answer (Stripe sends one on each response, errors included) and the hook that
lets a fault drop the TCP connection. Unknown paths and wrong methods get Stripe's 404 body.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from stripe_fake import ids
from stripe_fake.config import FakeConfig
from stripe_fake.embedded import build_embedded_router
from stripe_fake.errors import StripeError, unrecognized_url
from stripe_fake.fake import StripeFake
from stripe_fake.responses import ABORT_SCOPE_KEY, REQUEST_ID_SCOPE_KEY, error_response, transport_aborter
from stripe_fake.routes.control import build_control_router
from stripe_fake.routes.v1 import build_v1_router

logger = logging.getLogger("stripe_fake")


class StripeFakeApp(FastAPI):
    """FastAPI plus a ``Request-Id`` header on every response and the connection-abort hook."""

    fake: StripeFake

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request_id = ids.request_id()
        scope[REQUEST_ID_SCOPE_KEY] = request_id
        aborter = transport_aborter(send)
        if aborter is not None:
            scope[ABORT_SCOPE_KEY] = aborter
        header = (b"request-id", request_id.encode("ascii"))

        async def send_with_request_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if not any(name.lower() == b"request-id" for name, _ in headers):
                    headers.append(header)
                message = {**message, "headers": headers}
            await send(message)

        await super().__call__(scope, receive, send_with_request_id)


def create_app(config: FakeConfig | None = None) -> StripeFakeApp:
    """Build the app; its state lives in ``app.fake`` (a :class:`StripeFake`)."""
    cfg = config or FakeConfig()
    fake = StripeFake(cfg)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await fake.start()
        try:
            yield
        finally:
            await fake.stop()

    app = StripeFakeApp(
        title="Stripe stand-in",
        description="Checkout Sessions, Billing, refunds and signed webhooks, plus a /_fake test-control API.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.fake = fake
    app.state.fake = fake

    async def http_error(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 500)
        if status in (404, 405):
            return error_response(unrecognized_url(request.method, request.url.path))
        detail = getattr(exc, "detail", "error")
        return error_response(StripeError(status, str(detail)))

    app.add_exception_handler(HTTPException, http_error)
    app.include_router(build_v1_router(fake))
    app.include_router(build_control_router(fake))
    app.include_router(build_embedded_router(fake))
    return app
