"""Composition root: settings, the Stripe gateway, the order-service client, the runtime, the unit of work,
the two handler tables (stored Stripe events, provisioning events), the background jobs (webhook worker,
sweeper, refund worker) and the HTTP app."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from fastapi import FastAPI

from spawnpoint_kit.auth import install_auth, verifier_from
from spawnpoint_kit.http import install_common
from spawnpoint_kit.logs import configure_logging
from spawnpoint_kit.messaging.handlers import Subscription
from spawnpoint_kit.ratelimit import PerKeyLimit
from spawnpoint_kit.runtime import ServiceRuntime

from .adapters.order_client import OrderClient
from .adapters.stripe_gateway import StripeGateway
from .config import Settings
from .deps import Services, WebhookKeys
from .domain.refunds import RefundRules
from .entrypoints.api import router
from .entrypoints.jobs import (
    refund_job,
    rental_deadline_job,
    rental_reconcile_job,
    stripe_event_pruning_job,
    sweeper_job,
)
from .entrypoints.rental_metrics import rental_metrics_job
from .entrypoints.rental_operator import rental_operator_router
from .entrypoints.rentals_api import router as rentals_router
from .entrypoints.webhook_worker import LEASE_SECONDS, WebhookWorker
from .queues import PAYMENT_PROVISION_FAILED
from .service_layer import provisioning
from .service_layer.checkout import CheckoutConfig, CheckoutService
from .service_layer.event_intake import EventIntake
from .service_layer.fulfilment import Fulfilment
from .service_layer.handlers import provisioning_handlers, stripe_handlers
from .service_layer.refunds import RefundExecutor
from .service_layer.rental_actions import RentalActions
from .service_layer.rental_deadlines import RentalDeadlines, RentalReconciler
from .service_layer.stored_events import StoredEventRunner
from .service_layer.sweeper import Sweeper
from .service_layer.unit_of_work import SqlPaymentUnitOfWork
from .service_layer.webhook_pressure import WebhookPressure

SERVICE = "payment-service"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    configure_logging(SERVICE, level=settings.log_level, fmt=settings.log_format)
    background = settings.payment_process != "api"
    runtime = ServiceRuntime(settings, service=SERVICE, database_url=settings.database_url, relay=background)
    gateway = StripeGateway(
        settings.stripe_api_key.get_secret_value(),
        api_base=settings.stripe_api_base or None,
        max_network_retries=settings.stripe_max_network_retries,
    )
    order_client = OrderClient(settings.order_service_url)

    def unit_of_work() -> SqlPaymentUnitOfWork:
        return SqlPaymentUnitOfWork(runtime.sessions, runtime.topology)

    fulfilment = Fulfilment(gateway, unit_of_work, rental_policy=settings.rental_policy)
    intake = EventIntake(unit_of_work, pressure=WebhookPressure(busy_rate=settings.webhook_flood_rate))
    reconciler = RentalReconciler(
        unit_of_work, gateway, settings.rental_policy, interval=timedelta(seconds=settings.rental_reconcile_seconds)
    )
    if background:
        _add_background(runtime, settings, gateway, fulfilment, unit_of_work, intake, reconciler)

    checkout = CheckoutService(
        unit_of_work,
        gateway,
        fulfilment,
        CheckoutConfig(
            return_url=settings.checkout_return_url,
            expiry=timedelta(minutes=settings.checkout_expiry_minutes),
            test_clock_per_customer=settings.stripe_test_clock_per_customer,
        ),
        order_client,
        billing=gateway,
    )
    lifespan = runtime.lifespan(order_client.aclose, intake.aclose, gateway.aclose)

    app = FastAPI(
        title="Spawnpoint payment-service",
        version="1.0.0",
        description="Embedded Stripe Checkout for orders, the return page's status call, and the Stripe webhook "
        "that turns payments into OrderPaid, PaymentProcessing, PaymentFailed and OrderExpired events; refunds "
        "(OrderRefunded) for servers that cannot be provisioned and for duplicate payments.",
        lifespan=lifespan,
    )
    app.state.services = Services(
        runtime=runtime,
        unit_of_work=unit_of_work,
        fulfilment=fulfilment,
        checkout=checkout,
        intake=intake,
        webhook_keys=WebhookKeys(
            secrets=tuple(settings.webhook_secrets()), tolerance_seconds=settings.stripe_webhook_tolerance_seconds
        ),
        stripe_calls=PerKeyLimit(settings.stripe_calls_per_customer_per_minute, 60.0),
        rental_actions=RentalActions(
            unit_of_work,
            gateway,
            order_client,
            settings.rental_policy,
            portal_return_url=settings.billing_portal_return_url,
        ),
    )
    install_auth(app, verifier_from(settings))
    install_common(app, checks=runtime.readiness_checks())
    app.include_router(router)
    app.include_router(rentals_router)
    app.include_router(rental_operator_router(unit_of_work, gateway, reconciler, settings.rental_policy))
    app.include_router(runtime.operator_router())
    return app


def _add_background(
    runtime: ServiceRuntime,
    settings: Settings,
    gateway: StripeGateway,
    fulfilment: Fulfilment,
    unit_of_work: Callable[[], SqlPaymentUnitOfWork],
    intake: EventIntake,
    reconciler: RentalReconciler,
) -> None:
    """What a process runs besides its HTTP API (all of it, unless ``PAYMENT_PROCESS=api``): the provisioning
    consumer, the webhook worker (giving way to this process's own webhook intake), the sweeper, the refund
    worker, the pruning and the rental jobs."""
    runtime.consume(
        Subscription(
            PAYMENT_PROVISION_FAILED,
            provisioning_handlers(RefundRules(settings.refund_policy, settings.refund_hold)),
            unit_of_work=unit_of_work,
            consumer=provisioning.CONSUMER,
            batched=True,  # two deliveries per order (created, installed): group commit under load
        )
    )
    if settings.webhook_worker_concurrency:
        runner = StoredEventRunner(
            stripe_handlers(fulfilment), unit_of_work, gateway, billing=gateway, rental_policy=settings.rental_policy
        )
        worker = WebhookWorker(
            runner,
            unit_of_work,
            database_url=settings.database_url,
            concurrency=settings.webhook_worker_concurrency,
            pressure=intake.pressure,
            busy_concurrency=settings.webhook_worker_busy_concurrency,
            busy_events_per_second=settings.webhook_worker_busy_events_per_second,
        )
        runtime.add_job("webhook-worker", worker.run)
        intake.hand_to(worker.hand, lease_seconds=LEASE_SECONDS)  # what this process stores, it applies
    sweeper = Sweeper(
        unit_of_work,
        fulfilment,
        after=timedelta(seconds=settings.sweep_after_seconds),
        batch_size=settings.sweep_batch_size,
    )
    runtime.add_job("sweeper", sweeper_job(sweeper, interval_seconds=settings.sweep_interval_seconds))
    runtime.add_job("refunds", refund_job(RefundExecutor(unit_of_work, gateway)))
    runtime.add_job("stripe-event-pruning", stripe_event_pruning_job(unit_of_work))
    deadlines = RentalDeadlines(unit_of_work, gateway, settings.rental_policy)
    runtime.add_job(
        "rental-deadlines", rental_deadline_job(deadlines, poll_seconds=settings.rental_deadline_poll_seconds)
    )
    runtime.add_job(
        "rental-reconciler", rental_reconcile_job(reconciler, interval_seconds=settings.rental_reconcile_seconds)
    )
    runtime.add_job("rental-metrics", rental_metrics_job(unit_of_work))
