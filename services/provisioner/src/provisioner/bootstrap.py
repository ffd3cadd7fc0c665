"""Composition root: settings, panel client, provisioner, install watcher, runtime and HTTP (health)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI

from spawnpoint_kit.auth import TokenVerifier
from spawnpoint_kit.http import install_common
from spawnpoint_kit.logs import configure_logging
from spawnpoint_kit.messaging.queues import PROVISIONER_ORDER_PAID
from spawnpoint_kit.runtime import ServiceRuntime

from .adapters.eggs import EggCache
from .adapters.panel import PanelClient
from .config import Settings
from .entrypoints.consumers import order_paid_handler
from .entrypoints.install_watcher import install_watch_job
from .service_layer.install_watch import InstallWatcher
from .service_layer.provision import Provisioner

SERVICE = "provisioner"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    configure_logging(SERVICE, level=settings.log_level, fmt=settings.log_format)
    runtime = ServiceRuntime(settings, service=SERVICE, database_url=settings.database_url)
    panel = PanelClient(
        settings.panel_url,
        settings.panel_api_key.get_secret_value(),
        flavor=settings.panel_flavor,
        timeout=settings.panel_timeout_seconds,
    )
    provisioner = Provisioner(
        runtime.sessions,
        runtime.topology,
        panel,
        EggCache(panel),
        install_deadline=timedelta(seconds=settings.install_deadline_seconds),
    )
    runtime.consume(PROVISIONER_ORDER_PAID, order_paid_handler(provisioner))
    watcher = InstallWatcher(runtime.sessions, runtime.topology, panel, poll_seconds=settings.install_poll_seconds)
    runtime.add_job("install-watcher", install_watch_job(watcher, poll_seconds=settings.install_poll_seconds))

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()
            await panel.aclose()

    app = FastAPI(
        title="Spawnpoint provisioner",
        version="1.0.0",
        description="Consumes OrderPaid and creates the game server on the panel; this HTTP surface is for "
        "health, readiness and metrics.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.runtime = runtime
    app.state.token_verifier = TokenVerifier(settings.jwt_secret.get_secret_value(), settings.jwt_audience)
    install_common(app, checks=runtime.readiness_checks())
    return app
