"""Composition root: settings, the panel client and its rate gate, the OrderPaid subscription (its handler
and unit of work), the install watcher, the drift reconciler, the dead-letter metrics, the delay queues,
the runtime and HTTP (health, metrics, settings check, operator endpoints)."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI

from spawnpoint_kit.auth import install_auth, verifier_from
from spawnpoint_kit.http import install_common
from spawnpoint_kit.logs import configure_logging
from spawnpoint_kit.periodic import periodic
from spawnpoint_kit.runtime import ServiceRuntime

from .adapters.drift_records import SqlDriftRecords
from .adapters.eggs import BudgetedEggs, EggCache
from .adapters.panel import PanelClient
from .adapters.rate_gate import RateGate
from .config import Settings
from .deps import Services
from .entrypoints.consumers import desired_state_subscription, order_paid_subscription, order_refunded_subscription
from .entrypoints.drift import drift_job, drift_router
from .entrypoints.http import router as settings_router
from .entrypoints.install_watcher import install_watch_job
from .queues import PROVISIONER_DESIRED_STATE, PROVISIONER_ORDER_PAID
from .service_layer.converge import ConvergeServer
from .service_layer.drift import DriftReconciler
from .service_layer.install_watch import InstallWatcher
from .service_layer.provision import ProvisionOrderPaid
from .service_layer.refunded import SuspendRefunded
from .service_layer.unit_of_work import SqlProvisionerUnitOfWork

SERVICE = "provisioner"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    configure_logging(SERVICE, level=settings.log_level, fmt=settings.log_format)
    runtime = ServiceRuntime(settings, service=SERVICE, database_url=settings.database_url)

    def unit_of_work() -> SqlProvisionerUnitOfWork:
        return SqlProvisionerUnitOfWork(runtime.sessions, runtime.topology)

    gate = RateGate(per_minute=settings.panel_rate_limit_per_minute, burst=settings.panel_rate_limit_burst)
    panel = PanelClient(
        settings.panel_url,
        settings.panel_api_key.get_secret_value(),
        flavor=settings.panel_flavor,
        timeout=settings.panel_timeout_seconds,
        gate=gate,
        max_connections=settings.panel_max_connections,
    )
    eggs = EggCache(panel, ttl_seconds=settings.egg_cache_seconds)
    policy = settings.retry_policy()
    provision = ProvisionOrderPaid(
        panel=panel,
        eggs=eggs,
        retry=policy,
        topology=runtime.topology,
        queue=PROVISIONER_ORDER_PAID,
        install_deadline=timedelta(seconds=settings.install_deadline_seconds),
        first_install_check=timedelta(seconds=settings.install_poll_seconds),
    )
    runtime.consume(order_paid_subscription(provision, unit_of_work))
    runtime.consume(order_refunded_subscription(unit_of_work))
    converge = ConvergeServer(
        panel=panel,
        retry=policy,
        topology=runtime.topology,
        queue=PROVISIONER_DESIRED_STATE,
    )
    runtime.consume(desired_state_subscription(converge, unit_of_work))

    async def declare_retry_queues() -> None:
        for queue in (PROVISIONER_ORDER_PAID, PROVISIONER_DESIRED_STATE):
            await runtime.topology.declare_retry_queues(runtime.broker, queue, policy.broker_delays)

    runtime.after_declare(declare_retry_queues)
    watcher = InstallWatcher(
        unit_of_work,
        panel,
        poll_seconds=settings.install_poll_seconds,
        max_interval_seconds=settings.install_max_interval_seconds,
        desired_state_queue=runtime.topology.queue_name(PROVISIONER_DESIRED_STATE),
    )
    runtime.add_job("install-watcher", install_watch_job(watcher, poll_seconds=settings.install_poll_seconds))
    suspensions = SuspendRefunded(unit_of_work, panel, poll_seconds=max(5.0, settings.install_poll_seconds))
    runtime.add_job("refunded-suspensions", periodic(suspensions.round, every=5.0, name="refunded-suspensions"))
    drift = DriftReconciler(
        unit_of_work,
        SqlDriftRecords(runtime.sessions),
        panel,
        desired_state_queue=runtime.topology.queue_name(PROVISIONER_DESIRED_STATE),
    )
    if settings.drift_interval_seconds > 0:
        runtime.add_job("drift", drift_job(drift, every=settings.drift_interval_seconds, fix=settings.drift_auto_fix))

    lifespan = runtime.lifespan(panel.aclose)

    app = FastAPI(
        title="Spawnpoint provisioner",
        version="1.0.0",
        description="Consumes OrderPaid and creates the game server on the panel. This HTTP surface is internal: "
        "health, readiness, metrics, and the settings check order-service runs before payment.",
        lifespan=lifespan,
    )
    app.state.services = Services(eggs=BudgetedEggs(eggs, misses_per_minute=settings.settings_check_misses_per_minute))
    install_auth(app, verifier_from(settings))
    install_common(app, checks=runtime.readiness_checks())
    app.include_router(settings_router)
    app.include_router(runtime.operator_router())
    app.include_router(drift_router(drift))
    return app
