"""Composition root: settings, runtime (database, broker, the projection's subscription), the change feed,
and HTTP (its ``Services`` and its token checker).

One process serves polls, streams and the projection consumer. It holds one LISTEN connection (the
change feed) that keeps its status cache and its open streams up to date; run several processes behind
a load balancer and each hears every change.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from fastapi import FastAPI
from starlette.types import ASGIApp

from spawnpoint_kit.auth import install_auth, verifier_from
from spawnpoint_kit.http import ReadinessCheck, install_common
from spawnpoint_kit.logs import configure_logging
from spawnpoint_kit.runtime import ServiceRuntime

from .config import Settings
from .deps import Services
from .entrypoints.api import router
from .entrypoints.change_feed import ChangeFeed
from .entrypoints.polling import PollingFastPath
from .service_layer.handlers import projection_subscription
from .service_layer.queries import StatusQueries
from .service_layer.stream_slots import StreamSlots
from .service_layer.unit_of_work import SqlStatusUnitOfWork

SERVICE = "status-service"

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    configure_logging(SERVICE, level=settings.log_level, fmt=settings.log_format)
    runtime = ServiceRuntime(settings, service=SERVICE, database_url=settings.database_url)

    def unit_of_work() -> SqlStatusUnitOfWork:
        return SqlStatusUnitOfWork(runtime.sessions, runtime.topology)

    runtime.consume(projection_subscription(unit_of_work))
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
    app.include_router(runtime.operator_router())
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
    slots = StreamSlots(per_user=settings.streams_per_user, per_process=settings.streams_per_process)
    app.state.services = Services(settings=settings, queries=queries, stream_slots=slots)
    install_auth(app, verifier_from(settings))
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
