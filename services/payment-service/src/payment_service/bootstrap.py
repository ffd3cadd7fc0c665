"""Composition root: settings, Stripe gateway, order-service client, runtime, the webhook worker, the
sweeper, the refund worker, the provisioning consumer, and the HTTP app."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI

from spawnpoint_kit.auth import TokenVerifier
from spawnpoint_kit.http import install_common
from spawnpoint_kit.logs import configure_logging
from spawnpoint_kit.runtime import ServiceRuntime

from .adapters.order_client import OrderClient
from .adapters.stripe_gateway import StripeGateway
from .config import Settings
from .entrypoints import consumers
from .entrypoints.api import router
from .entrypoints.jobs import refund_job, sweeper_job
from .entrypoints.webhook_worker import WebhookWorker
from .service_layer.checkout import CheckoutConfig, CheckoutService
from .service_layer.event_intake import EventIntake
from .service_layer.fulfilment import Fulfilment
from .service_layer.provisioning import ProvisioningEvents
from .service_layer.refunds import RefundExecutor
from .service_layer.sweeper import Sweeper

SERVICE = "payment-service"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    configure_logging(SERVICE, level=settings.log_level, fmt=settings.log_format)
    runtime = ServiceRuntime(settings, service=SERVICE, database_url=settings.database_url)
    gateway = StripeGateway(
        settings.stripe_api_key.get_secret_value(),
        api_base=settings.stripe_api_base or None,
        max_network_retries=settings.stripe_max_network_retries,
    )
    order_client = OrderClient(settings.order_service_url)
    fulfilment = Fulfilment(runtime.sessions, runtime.topology, gateway)
    checkout = CheckoutService(
        runtime.sessions,
        gateway,
        fulfilment,
        CheckoutConfig(
            return_url=settings.checkout_return_url, expiry=timedelta(minutes=settings.checkout_expiry_minutes)
        ),
    )
    worker = WebhookWorker(
        runtime.sessions,
        fulfilment,
        database_url=settings.database_url,
        concurrency=settings.webhook_worker_concurrency,
    )
    sweeper = Sweeper(
        runtime.sessions,
        fulfilment,
        after=timedelta(seconds=settings.sweep_after_seconds),
        batch_size=settings.sweep_batch_size,
    )
    executor = RefundExecutor(runtime.sessions, runtime.topology, gateway)
    if settings.webhook_worker_concurrency:
        runtime.add_job("webhook-worker", worker.run)
    runtime.add_job("sweeper", sweeper_job(sweeper, interval_seconds=settings.sweep_interval_seconds))
    runtime.add_job("refunds", refund_job(executor))
    consumers.register(
        runtime, ProvisioningEvents(runtime.sessions, policy=settings.refund_policy, hold=settings.refund_hold)
    )

    intake = EventIntake(runtime.sessions)
    lifespan = runtime.lifespan(order_client.aclose, intake.aclose)

    app = FastAPI(
        title="Spawnpoint payment-service",
        version="1.0.0",
        description="Embedded Stripe Checkout for orders, the return page's status call, and the Stripe webhook "
        "that turns payments into OrderPaid, PaymentProcessing, PaymentFailed and OrderExpired events; refunds "
        "(OrderRefunded) for servers that cannot be provisioned and for duplicate payments.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.runtime = runtime
    app.state.gateway = gateway
    app.state.order_client = order_client
    app.state.fulfilment = fulfilment
    app.state.intake = intake
    app.state.checkout = checkout
    app.state.webhook_secrets = settings.webhook_secrets()
    app.state.token_verifier = TokenVerifier(settings.jwt_secret.get_secret_value(), settings.jwt_audience)
    install_common(app, checks=runtime.readiness_checks())
    app.include_router(router)
    return app
