"""Composition root: settings, runtime (database, broker, the events subscription), the sender's jobs and
the HTTP API.

One process consumes the events (recording the e-mails), sends them (the sender job, which several
replicas share through ``FOR UPDATE SKIP LOCKED``) and serves the API.
"""

from __future__ import annotations

from fastapi import FastAPI

from spawnpoint_kit.auth import install_auth, verifier_from
from spawnpoint_kit.http import install_common
from spawnpoint_kit.logs import configure_logging
from spawnpoint_kit.periodic import periodic
from spawnpoint_kit.runtime import ServiceRuntime

from .adapters.panel import PanelDirectory
from .adapters.smtp import SmtpMailer
from .config import Settings
from .deps import Services
from .entrypoints.api import router
from .service_layer.intake import Intake, events_subscription
from .service_layer.sender import Sender
from .service_layer.unit_of_work import SqlNotificationUnitOfWork

SERVICE = "notification-service"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    configure_logging(SERVICE, level=settings.log_level, fmt=settings.log_format)
    runtime = ServiceRuntime(settings, service=SERVICE, database_url=settings.database_url)

    def unit_of_work() -> SqlNotificationUnitOfWork:
        return SqlNotificationUnitOfWork(runtime.sessions, runtime.topology)

    runtime.consume(events_subscription(Intake(order_placed=settings.notify_order_placed), unit_of_work))
    directory = PanelDirectory(settings)
    sender = Sender(
        unit_of_work, mailer=SmtpMailer(settings), directory=directory, settings=settings, topology=runtime.topology
    )
    runtime.add_job("email-sender", periodic(sender.step, every=settings.sender_poll_seconds, name="email-sender"))
    runtime.add_job("email-queue-metrics", periodic(sender.measure, every=5.0, name="email-queue-metrics"))

    app = FastAPI(
        title="Spawnpoint notification-service",
        version="1.0.0",
        description="E-mails customers every moment of their order and rental that matters, exactly once, in "
        "their language. See docs/notifications.md.",
        lifespan=runtime.lifespan(directory.aclose),
    )
    app.state.services = Services(unit_of_work=unit_of_work)
    install_auth(app, verifier_from(settings))
    install_common(app, checks=runtime.readiness_checks())
    app.include_router(router)
    app.include_router(runtime.operator_router())
    return app
