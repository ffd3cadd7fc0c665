"""Composition root: settings, runtime (database, broker; no outbox: this service only reads) and HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from spawnpoint_kit.auth import TokenVerifier
from spawnpoint_kit.http import install_common
from spawnpoint_kit.logs import configure_logging
from spawnpoint_kit.messaging.queues import STATUS_PROJECTION
from spawnpoint_kit.runtime import ServiceRuntime

from .config import Settings
from .entrypoints.api import router
from .entrypoints.consumers import projection_handler

SERVICE = "status-service"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    configure_logging(SERVICE, level=settings.log_level, fmt=settings.log_format)
    runtime = ServiceRuntime(settings, service=SERVICE, database_url=settings.database_url)
    runtime.consume(STATUS_PROJECTION, projection_handler(runtime.sessions))

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(
        title="Spawnpoint status-service",
        version="1.0.0",
        description="The customer-facing status of an order, projected from every event: for polling.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.runtime = runtime
    app.state.token_verifier = TokenVerifier(settings.jwt_secret.get_secret_value(), settings.jwt_audience)
    install_common(app, checks=runtime.readiness_checks())
    app.include_router(router)
    return app
