"""A service's runtime: database, broker, topology, consumers, the outbox relay and background jobs.

Each service's ``bootstrap.py`` builds one ``ServiceRuntime``, registers its subscriptions (a queue and
its handler table) and jobs, and its FastAPI lifespan calls ``start`` and ``stop``. Start order: connect
the broker, declare the exchanges and the queues this service consumes (with their dead-letter queues),
start the subscribers, then the relay and the service's background jobs.

A service starts even when the broker or its database is down: ``start`` tries once and, if something is
not there yet, keeps trying in the background (backoff up to 5 s) while ``/readyz`` answers 503 naming
what it waits for (check ``started``). Once up, the broker connection is robust (reconnects by itself),
consumers hold messages through a database outage (``consumer.py``) and the relay and jobs retry their
rounds: nothing needs a restart after a dependency comes back.

Building the runtime also turns tracing on for the process when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set
(``tracing.configure``, docs/tracing.md); the service's name becomes the spans' ``service.name``.

When ``<service> serve`` was asked to migrate, it hands the Alembic file over in
``SPAWNPOINT_MIGRATE_ON_START`` and the migration is the first step of that start, so a database that is
still down delays readiness instead of stopping the process.

A service declares only its own queues: the system's whole topology (every service's queues) is declared
before the first start by the deployment (``deploy/rabbitmq/definitions.json``, or ``scripts/devstack.py``
on a development machine), so no event is published while a consumer's queue is still missing
(docs/decisions.md, 22). Stop order: stop consuming (FastStream waits for in-flight
handlers up to its graceful timeout), then stop the jobs and the relay, then close the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aio_pika
from fastapi import APIRouter
from sqlalchemy import text

from . import tracing
from .db import database_unreachable, make_engine, make_session_factory, prepare_database
from .http import NotReady
from .logs import get_logger
from .messaging.broker import make_broker
from .messaging.consumer import Consumers
from .messaging.dlq_depth import DeadLetterDepths
from .messaging.handlers import Subscription
from .messaging.relay import OutboxRelay
from .messaging.specs import QueueSpec
from .messaging.topology import Topology
from .operator_api import outbox_router
from .periodic import BackgroundJob, periodic
from .settings import CommonSettings
from .unit_of_work import SqlUnitOfWork

log = get_logger(__name__)

PRUNE_BATCH = 5000
_PRUNE_INBOX = text(
    "DELETE FROM inbox WHERE ctid IN (SELECT ctid FROM inbox WHERE processed_at < :before LIMIT :limit)"
)

MIGRATE_ON_START = "SPAWNPOINT_MIGRATE_ON_START"
"""Set by ``<service> serve`` to the service's ``alembic.ini``: migrate as the first step of starting."""


class ServiceRuntime:
    def __init__(
        self,
        settings: CommonSettings,
        *,
        service: str,
        database_url: str,
        relay: bool = True,
    ) -> None:
        self.settings = settings
        self.service = service
        self.database_url = database_url
        # Traces are on when OTEL_EXPORTER_OTLP_ENDPOINT is set: from here on FastAPI's own telemetry and the
        # httpx instrumentation trace every request and call of the process. Off, this returns at once.
        tracing.configure(service)
        self.engine = make_engine(database_url, pool_size=settings.db_pool_size)
        self.sessions = make_session_factory(self.engine)
        self.topology = Topology(settings.namespace)
        self.broker = make_broker(settings, service=service)
        self.consumers = Consumers(self.broker, self.topology, self.unit_of_work, service=service)
        self.relay = (
            OutboxRelay(
                self.engine,
                self.broker,
                database_url=database_url,
                batch_size=settings.relay_batch_size,
                poll_seconds=settings.relay_poll_seconds,
                linger_seconds=settings.relay_linger_seconds,
            )
            if relay
            else None
        )
        self._consumed: list[QueueSpec] = []
        self._jobs: dict[str, BackgroundJob] = {"inbox-pruning": periodic(self.prune_inbox, every=3600, name="inbox")}
        self._after_declare: list[Callable[[], Awaitable[None]]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._stop = asyncio.Event()
        self._admin: aio_pika.abc.AbstractRobustConnection | None = None
        migrate = os.environ.get(MIGRATE_ON_START, "")
        self._migrate: Path | None = Path(migrate) if migrate else None
        self._steps_done: set[str] = set()
        self._waiting_for = "not started"
        self._up = asyncio.Event()
        self._bring_up: asyncio.Task[None] | None = None

    def unit_of_work(self) -> SqlUnitOfWork:
        """A plain unit of work on this service's database (no repositories): the kit's own dead-lettering."""
        return SqlUnitOfWork(self.sessions, self.topology)

    def consume(self, subscription: Subscription[Any]) -> None:
        """Consume ``subscription.queue`` with its handler table (declared at start with its DLQ)."""
        self._consumed.append(subscription.queue)
        self.consumers.subscribe(subscription)

    def add_job(self, name: str, job: BackgroundJob) -> None:
        """Run ``job(stop_event)`` in the background for the life of the service."""
        self._jobs[name] = job

    @property
    def job_names(self) -> list[str]:
        """The background jobs this process runs (for its start-up log and for tests)."""
        return list(self._jobs)

    def after_declare(self, step: Callable[[], Awaitable[None]]) -> None:
        """Extra declarations (for example delay queues) run after the topology, before consuming."""
        self._after_declare.append(step)

    async def start(self) -> None:
        """Bring the service up now if its dependencies answer, else keep trying in the background."""
        try:
            await self._bring_up_once()
        except Exception as exc:
            log.warning(
                "a dependency is not reachable yet; starting in the background",
                waiting_for=self._waiting_for,
                error=repr(exc)[:300],
            )
            self._bring_up = asyncio.create_task(self._bring_up_until_done(), name="bring-up")

    async def _bring_up_until_done(self) -> None:
        delay = 0.5
        while not self._stop.is_set():
            try:
                await self._bring_up_once()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.info("still waiting to start", waiting_for=self._waiting_for, error=repr(exc)[:300])
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), timeout=delay)
                delay = min(5.0, delay * 2)

    async def _step(self, name: str, waiting_for: str, action: Callable[[], Awaitable[None]]) -> None:
        """Run one start step once (a retried start resumes at the first step not done)."""
        if name in self._steps_done:
            return
        self._waiting_for = waiting_for
        await action()
        self._steps_done.add(name)

    async def _bring_up_once(self) -> None:
        migrate = self._migrate
        if migrate is not None:
            await self._step(
                "migrate", "the database (migrations)", lambda: prepare_database(migrate, self.database_url)
            )
        await self._step("connect", "the broker", self._connect_broker)
        await self._step("declare", "the broker (declaring queues)", self._declare)
        await self._step("consume", "the broker (starting consumers)", self.broker.start)
        await self._step("admin", "the broker (admin connection)", self._connect_admin)
        if self.relay is not None:
            self._spawn("outbox-relay", self.relay.run)
        if self._consumed:
            depths = DeadLetterDepths(
                self.settings.broker_url.get_secret_value(), [self.topology.dlq_name(s) for s in self._consumed]
            )
            self._spawn(
                "dlq-metrics",
                periodic(
                    depths.read, every=self.settings.dlq_metrics_seconds, name="dlq-metrics", on_stop=depths.close
                ),
            )
        for name, job in self._jobs.items():
            self._spawn(name, job)
        self._waiting_for = ""
        self._up.set()
        log.info("service started", consumes=[s.name for s in self._consumed], jobs=self.job_names)

    async def _connect_broker(self) -> None:
        await self.broker.connect()

    async def _declare(self) -> None:
        await self.topology.declare(self.broker, self._consumed)
        for step in self._after_declare:
            await step()

    async def _connect_admin(self) -> None:
        self._admin = await aio_pika.connect_robust(self.settings.broker_url.get_secret_value())

    def _spawn(self, name: str, job: BackgroundJob) -> None:
        async def guarded() -> None:
            while not self._stop.is_set():
                try:
                    await job(self._stop)
                    return
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    if database_unreachable(exc):  # an outage, not a bug: no stack trace every two seconds
                        log.warning("background job waits for the database", job=name, error=repr(exc)[:200])
                    else:
                        log.exception("background job crashed; restarting", job=name, error=repr(exc))
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stop.wait(), timeout=2.0)

        self._tasks.append(asyncio.create_task(guarded(), name=name))

    async def stop(self) -> None:
        self._stop.set()
        if self._bring_up is not None:
            self._bring_up.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._bring_up
        with contextlib.suppress(Exception):
            await self.broker.stop()
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=15)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self._admin is not None:
            with contextlib.suppress(Exception):
                await self._admin.close()
        await self.engine.dispose()
        if tracing.ENABLED:
            await asyncio.to_thread(tracing.shutdown)  # the last spans, exported before the process ends
        log.info("service stopped")

    def lifespan(self, *on_stop: Callable[[], Awaitable[None]]) -> Callable[[Any], AbstractAsyncContextManager[None]]:
        """A FastAPI lifespan that starts this runtime and, on shutdown, stops it and then runs ``on_stop``
        (closing HTTP clients and the like)."""

        @asynccontextmanager
        async def lifespan(_: Any) -> AsyncIterator[None]:
            await self.start()
            try:
                yield
            finally:
                await self.stop()
                for close in on_stop:
                    await close()

        return lifespan

    # readiness checks -------------------------------------------------------------------------------

    async def check_started(self) -> None:
        if not self._up.is_set():
            raise NotReady(f"starting: waiting for {self._waiting_for}")

    async def check_database(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def check_broker(self) -> None:
        if not await self.broker.ping(timeout=2.0):
            raise RuntimeError("broker does not answer")

    async def check_consumers(self) -> None:
        """Each queue this service consumes has a consumer (guards against consumers not restored after a
        broker restart, faststream#2758)."""
        if self._admin is None:
            raise RuntimeError("not started")
        channel = await self._admin.channel()
        try:
            for spec in self._consumed:
                queue = await channel.declare_queue(self.topology.queue_name(spec), passive=True)
                consumers = queue.declaration_result.consumer_count or 0
                if consumers < 1:
                    raise RuntimeError(f"no consumer on {queue.name}")
        finally:
            await channel.close()

    async def prune_inbox(self) -> bool:
        """Delete inbox rows older than ``INBOX_RETENTION_DAYS``, a batch at a time (True: more are due)."""
        before = datetime.now(UTC) - timedelta(days=self.settings.inbox_retention_days)
        async with self.engine.begin() as conn:
            result = await conn.execute(_PRUNE_INBOX, {"before": before, "limit": PRUNE_BATCH})
        return int(result.rowcount or 0) >= PRUNE_BATCH

    def operator_router(self) -> APIRouter:
        """This service's operator endpoints (its outbox's parked rows; ``operator_api.py``)."""
        return outbox_router(self.engine, service=self.service)

    def readiness_checks(self) -> dict[str, Callable[[], Awaitable[None]]]:
        checks: dict[str, Callable[[], Awaitable[None]]] = {
            "started": self.check_started,
            "database": self.check_database,
            "broker": self.check_broker,
        }
        if self._consumed:
            checks["consumers"] = self.check_consumers
        return checks
