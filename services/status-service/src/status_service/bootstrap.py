"""Composition root: settings, runtime (database, broker, the consumer), the change feed, and HTTP.

One process serves polls, streams and the projection consumer. It holds one LISTEN connection (the
change feed) that keeps its status cache and its open streams up to date; run several processes behind
a load balancer and each hears every change.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from fastapi import FastAPI
from starlette.types import ASGIApp

from spawnpoint_kit.auth import TokenVerifier
from spawnpoint_kit.http import ReadinessCheck, install_common
from spawnpoint_kit.logs import configure_logging
from spawnpoint_kit.messaging.queues import STATUS_PROJECTION
from spawnpoint_kit.runtime import ServiceRuntime

from .config import Settings
from .entrypoints.api import router
from .entrypoints.auth import PrincipalCache
from .entrypoints.change_feed import ChangeFeed
from .entrypoints.consumers import projection_handler
from .entrypoints.polling import PollingFastPath
from .service_layer.queries import StatusQueries

SERVICE = "status-service"

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    configure_logging(SERVICE, level=settings.log_level, fmt=settings.log_format)
    runtime = ServiceRuntime(settings, service=SERVICE, database_url=settings.database_url)
    runtime.consume(STATUS_PROJECTION, projection_handler(runtime.sessions))
    queries = StatusQueries.create(runtime.engine, cache_size=settings.cache_size)
    feed = ChangeFeed(settings.database_url, queries.cache, queries.hub, queries.current)
    runtime.add_job("status-change-feed", feed.run)

    lifespan = runtime.lifespan()

    app = build_api(
        settings,
        queries,
        feed,
        lifespan=lifespan,
        checks={**runtime.readiness_checks(), "change_feed": _feed_check(feed)},
    )
    app.state.runtime = runtime
    return app


def build_api(
    settings: Settings,
    queries: StatusQueries,
    feed: ChangeFeed,
    *,
    lifespan: Lifespan,
    checks: dict[str, ReadinessCheck],
) -> FastAPI:
    """The HTTP surface alone (component tests run it with their own lifespan)."""
    app = StatusServiceApp(
        title="Spawnpoint status-service",
        version="1.0.0",
        description="The customer-facing status of an order, projected from every event: poll it (with ETags), "
        "stream it (Server-Sent Events), read its timeline; operators read its full event trail. "
        "See docs/status-api.md.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.queries = queries
    app.state.change_feed = feed
    verifier = TokenVerifier(settings.jwt_secret.get_secret_value(), settings.jwt_audience)
    app.state.token_verifier = verifier
    app.state.principals = PrincipalCache(verifier)
    install_common(app, checks=checks)
    app.include_router(router)
    return app


class StatusServiceApp(FastAPI):
    """FastAPI, with well-formed polls answered before its middleware stack (``entrypoints/polling.py``)."""

    def build_middleware_stack(self) -> ASGIApp:
        return PollingFastPath(super().build_middleware_stack(), self)


def _feed_check(feed: ChangeFeed) -> ReadinessCheck:
    """Ready only while listening: without the feed, streams would not hear changes."""

    async def check() -> None:
        if not feed.connected.is_set():
            raise RuntimeError("not listening for status changes yet")

    return check
