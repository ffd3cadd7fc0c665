"""Composition root: wires settings, catalog, runtime (database, broker, relay) and the HTTP app."""

from __future__ import annotations

from fastapi import FastAPI

from spawnpoint_kit.auth import TokenVerifier
from spawnpoint_kit.http import install_common
from spawnpoint_kit.logs import configure_logging
from spawnpoint_kit.messaging.queues import ORDER_LIFECYCLE
from spawnpoint_kit.runtime import ServiceRuntime

from .adapters.catalog_file import load_catalog
from .adapters.settings_check import SettingsCheck
from .config import Settings
from .entrypoints.api import router
from .entrypoints.consumers import lifecycle_handler

SERVICE = "order-service"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    configure_logging(SERVICE, level=settings.log_level, fmt=settings.log_format)
    catalog = load_catalog(settings.catalog_path)
    runtime = ServiceRuntime(settings, service=SERVICE, database_url=settings.database_url)
    runtime.consume(ORDER_LIFECYCLE, lifecycle_handler(runtime.sessions))
    settings_check = SettingsCheck(settings.provisioner_url) if settings.provisioner_url else None

    lifespan = runtime.lifespan(*([settings_check.aclose] if settings_check is not None else []))

    app = FastAPI(
        title="Spawnpoint order-service",
        version="1.0.0",
        description="The catalog of games and plans, and the customer's orders. Placing an order stores it "
        "as pending payment and announces OrderCreated.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.catalog = catalog
    app.state.runtime = runtime
    app.state.settings_check = settings_check
    app.state.token_verifier = TokenVerifier(settings.jwt_secret.get_secret_value(), settings.jwt_audience)
    install_common(app, checks=runtime.readiness_checks())
    app.include_router(router)
    return app
