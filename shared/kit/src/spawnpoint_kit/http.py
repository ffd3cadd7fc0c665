"""HTTP pieces every service shares: correlation ids, request metrics, error bodies, health and metrics.

- Every request gets a correlation id (``X-Correlation-ID`` from the caller, else a new one). It is bound
  to the log context, echoed in the response, and stamped on every event the request stages, so one
  customer's order can be followed across services. The caller's header is untrusted text: it is taken
  only when it is 1 to 200 printable ASCII characters without spaces (``messaging.wire.inbound_token``),
  and replaced by a fresh id otherwise, never cut or re-encoded (an id that cannot go on the wire would
  strand every event of the order).
- With tracing on (``tracing.py``), FastAPI's own telemetry gives every request but the probes and scrapes
  a SERVER span, a child of the caller's ``traceparent``; the middleware adds the correlation id to it as
  ``spawnpoint.correlation_id``.
- Validation errors are 422 with the offending field named in ``field``; no handler lets a raw exception
  become an HTML 500.
- ``/healthz`` is liveness (the process answers); ``/readyz`` runs the service's readiness checks
  (database, broker, consumers present) and answers 503 naming what is not ready. It says *which* check
  fails, never the exception's text (anyone can call it; the text can name hosts, users and queues): that
  goes to the log. A check may raise ``NotReady`` with a sentence that is safe to show.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any

import sqlalchemy.exc
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY, RequestBodyLimitMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import tracing
from .db import UNREACHABLE_ERRORS, database_unreachable
from .logs import get_logger
from .messaging.wire import inbound_token

log = get_logger(__name__)

CORRELATION_HEADER = "x-correlation-id"

MAX_BODY_BYTES = 64 * 1024
"""Every service's request body limit (413 past it): our largest request body, an order with its settings,
is a few kilobytes. Routes that need more say so with FastAPI's route ``max_body_size`` (the Stripe webhook:
1 MiB). ``install_common`` puts Starlette's limiter *inside* the request-context middleware rather than
passing ``max_body_size`` to ``FastAPI()``: the app-level limiter sits outside every user middleware, so a
refusal of a declared ``Content-Length`` left without a correlation id and as plain text."""

KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
"""Metric labels take these; any other method token a client sends is counted as ``OTHER`` (a label per
arbitrary token would be an unbounded number of series)."""
_correlation_id: ContextVar[str | None] = ContextVar("correlation_id", default=None)

REQUESTS = Counter("http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram(
    "http_request_duration_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)


def current_correlation_id() -> str:
    """The correlation id of the request being handled (a new one outside a request)."""
    return _correlation_id.get() or str(uuid.uuid4())


class RequestContextMiddleware:
    """Pure ASGI middleware (cheap on the hot path): correlation id, log context and request metrics."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming: str | None = None
        for name, value in scope.get("headers", []):
            if name == b"x-correlation-id" or (incoming is None and name == b"x-request-id"):
                incoming = inbound_token(value) or incoming
        correlation = incoming or str(uuid.uuid4())
        if tracing.ENABLED:  # the request's SERVER span (FastAPI's, around the app) names it: logs <-> traces
            tracing.annotate({"spawnpoint.correlation_id": correlation})
        token = _correlation_id.set(correlation)
        started = time.perf_counter()
        status_holder = {"status": 500}

        too_large: bytes | None = None

        async def send_wrapper(message: Message) -> None:
            nonlocal too_large
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                headers = list(message.get("headers", []))
                if message["status"] == 413 and (b"content-type", b"text/plain; charset=utf-8") in headers:
                    too_large = _too_large_body(scope, correlation)
                    headers = [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(too_large)).encode("ascii")),
                    ]
                headers.append((b"x-correlation-id", correlation.encode("ascii")))
                message["headers"] = headers
            elif message["type"] == "http.response.body" and too_large is not None:
                message = {"type": "http.response.body", "body": too_large, "more_body": False}
                too_large = b""
            await send(message)

        try:
            with structlog.contextvars.bound_contextvars(correlation_id=correlation):
                await self.app(scope, receive, send_wrapper)
        finally:
            _correlation_id.reset(token)
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope["method"] if scope["method"] in KNOWN_METHODS else "OTHER"
            REQUESTS.labels(method, template, str(status_holder["status"])).inc()
            LATENCY.labels(method, template).observe(time.perf_counter() - started)


def _too_large_body(scope: Scope, correlation: str) -> bytes:
    """Our error body for Starlette's plain-text 413 (the limiter answers before any handler runs)."""
    limit = scope.get(MAX_BODY_SIZE_SCOPE_KEY)
    detail = f"the request body is larger than {limit} bytes" if limit else "the request body is too large"
    return json.dumps({"detail": detail, "correlation_id": correlation}).encode("ascii")


async def _too_large(request: Request, _: Exception) -> Response:
    """The same body when the limit is met while a handler reads the body (a chunked upload): FastAPI raises
    it as an HTTP 413 then."""
    return Response(_too_large_body(request.scope, current_correlation_id()), 413, media_type="application/json")


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors: list[dict[str, Any]] = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ())]
        if err.get("type") == "json_invalid":
            errors.append(
                {
                    "field": "body",
                    "message": f"the body is not valid JSON: {err.get('msg')}",
                    "type": "json_invalid",
                    "loc": ["body"],
                }
            )
            continue
        field = ".".join(p for p in loc if p not in ("body", "query", "path", "header"))
        errors.append({"field": field or None, "message": err.get("msg"), "type": err.get("type"), "loc": loc})
    return JSONResponse(status_code=422, content={"detail": errors})


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    """The database refused or dropped the connection (restarting, too many clients, failover, pool
    exhausted): the request can be retried, so say so with a 503 instead of an internal error. Any other
    database error is a bug and stays a 500."""
    if not database_unreachable(exc):
        return await _unhandled(request, exc)
    log.warning("database unavailable", error=str(exc)[:300])
    return JSONResponse(
        status_code=503,
        content={"detail": "temporarily unavailable; retry shortly", "correlation_id": current_correlation_id()},
        headers={"Retry-After": "1"},
    )


async def _unhandled(request: Request, exc: Exception) -> JSONResponse:
    if database_unreachable(exc):  # a refused connection can arrive unwrapped (asyncpg's connect)
        return await _database_error(request, exc)
    log.exception("unhandled error", error=repr(exc))
    return JSONResponse(
        status_code=500,
        content={"detail": "internal error", "correlation_id": current_correlation_id()},
    )


ReadinessCheck = Callable[[], Awaitable[None]]


class NotReady(Exception):
    """A readiness check's failure whose message is ours and safe to show (``starting: waiting for ...``)."""


def install_common(app: FastAPI, *, checks: dict[str, ReadinessCheck], max_body_size: int = MAX_BODY_BYTES) -> None:
    """Add the middleware (the body limit inside the request context), error handlers, ``/healthz``,
    ``/readyz`` and ``/metrics`` to ``app``."""
    app.add_middleware(RequestBodyLimitMiddleware, max_body_size=max_body_size)
    app.add_middleware(RequestContextMiddleware)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(413, _too_large)
    app.add_exception_handler(sqlalchemy.exc.DBAPIError, _database_error)
    app.add_exception_handler(sqlalchemy.exc.TimeoutError, _database_error)
    # A connection refused at the pool's connect arrives unwrapped (OSError, asyncpg's own errors). Handled by
    # type here, not in the catch-all: Starlette re-raises whatever reaches the catch-all after answering.
    for unwrapped in UNREACHABLE_ERRORS:
        app.add_exception_handler(unwrapped, _database_error)
    app.add_exception_handler(Exception, _unhandled)

    @app.get("/healthz", tags=["operations"], summary="Liveness: the process is up")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["operations"],
        summary="Readiness: database, broker and consumers",
        responses={503: {"description": "Something this service needs is not ready"}},
    )
    async def readyz() -> JSONResponse:
        results: dict[str, Any] = {}
        ready = True
        for name, check in checks.items():
            try:
                await check()
                results[name] = "ok"
            except NotReady as exc:
                ready = False
                results[name] = str(exc)[:200]
            except Exception as exc:
                ready = False
                results[name] = "failing"
                log.info("readiness check failing", check=name, error=repr(exc)[:300])
        return JSONResponse(
            status_code=200 if ready else 503,
            content={"status": "ready" if ready else "not_ready", "checks": results},
        )

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics", include_in_schema=True)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
