"""Composition root: wires settings, catalog, runtime (database, broker, relay), the lifecycle queue's
handler table and the HTTP app."""

from __future__ import annotations

from fastapi import FastAPI

from spawnpoint_kit.auth import install_auth, verifier_from
from spawnpoint_kit.http import install_common
from spawnpoint_kit.logs import configure_logging
from spawnpoint_kit.messaging.handlers import Subscription
from spawnpoint_kit.runtime import ServiceRuntime

from .adapters.catalog_file import load_catalog
from .adapters.settings_check import SettingsCheck
from .config import Settings
from .deps import Services
from .entrypoints.api import router
from .queues import ORDER_LIFECYCLE
from .service_layer.handlers import HANDLERS
from .service_layer.unit_of_work import SqlOrderUnitOfWork

SERVICE = "order-service"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    configure_logging(SERVICE, level=settings.log_level, fmt=settings.log_format)
    catalog = load_catalog(settings.catalog_path)
    runtime = ServiceRuntime(settings, service=SERVICE, database_url=settings.database_url)

    def unit_of_work() -> SqlOrderUnitOfWork:
        return SqlOrderUnitOfWork(runtime.sessions, runtime.topology)

    runtime.consume(Subscription(ORDER_LIFECYCLE, HANDLERS, unit_of_work=unit_of_work, batched=True))
    settings_check = SettingsCheck(settings.provisioner_url) if settings.provisioner_url else None

    lifespan = runtime.lifespan(*([settings_check.aclose] if settings_check is not None else []))

    app = FastAPI(
        title="Spawnpoint order-service",
        version="1.0.0",
        description="The catalog of games and plans, and the customer's orders. Placing an order stores it "
        "as pending payment and announces OrderCreated.",
        lifespan=lifespan,
    )
    app.state.services = Services(catalog=catalog, unit_of_work=unit_of_work, settings_check=settings_check)
    install_auth(app, verifier_from(settings))
    install_common(app, checks=runtime.readiness_checks())
    app.include_router(router)
    app.include_router(runtime.operator_router())
    return app
