"""A service's runtime: database, broker, topology, consumers, the outbox relay and background jobs.

Each service's ``bootstrap.py`` builds one ``ServiceRuntime``, registers its subscriptions (a queue and
its handler table) and jobs, and its FastAPI lifespan calls ``start`` and ``stop``. Start order: connect
the broker, declare the exchanges and the queues this service consumes (with their dead-letter queues),
start the subscribers, then the relay and the service's background jobs.

A service declares only its own queues: the system's whole topology (every service's queues) is declared
before the first start by the deployment (``deploy/rabbitmq/definitions.json``, or ``scripts/devstack.py``
on a development machine), so no event is published while a consumer's queue is still missing
(docs/decisions.md, 22). Stop order: stop consuming (FastStream waits for in-flight
handlers up to its graceful timeout), then stop the jobs and the relay, then close the database.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import aio_pika
from sqlalchemy import text

from .db import make_engine, make_session_factory
from .logs import get_logger
from .messaging.broker import make_broker
from .messaging.consumer import Consumers
from .messaging.handlers import Subscription
from .messaging.relay import OutboxRelay
from .messaging.specs import QueueSpec
from .messaging.topology import Topology
from .periodic import BackgroundJob
from .settings import CommonSettings
from .unit_of_work import SqlUnitOfWork

log = get_logger(__name__)


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
            )
            if relay
            else None
        )
        self._consumed: list[QueueSpec] = []
        self._jobs: dict[str, BackgroundJob] = {}
        self._after_declare: list[Callable[[], Awaitable[None]]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._stop = asyncio.Event()
        self._admin: aio_pika.abc.AbstractRobustConnection | None = None

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
        await self.broker.connect()
        await self.topology.declare(self.broker, self._consumed)
        for step in self._after_declare:
            await step()
        await self.broker.start()
        self._admin = await aio_pika.connect_robust(self.settings.broker_url.get_secret_value())
        if self.relay is not None:
            self._spawn("outbox-relay", self.relay.run)
        for name, job in self._jobs.items():
            self._spawn(name, job)
        log.info("service started", consumes=[s.name for s in self._consumed], jobs=self.job_names)

    def _spawn(self, name: str, job: BackgroundJob) -> None:
        async def guarded() -> None:
            while not self._stop.is_set():
                try:
                    await job(self._stop)
                    return
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.exception("background job crashed; restarting", job=name, error=repr(exc))
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stop.wait(), timeout=2.0)

        self._tasks.append(asyncio.create_task(guarded(), name=name))

    async def stop(self) -> None:
        self._stop.set()
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

    def readiness_checks(self) -> dict[str, Callable[[], Awaitable[None]]]:
        checks: dict[str, Callable[[], Awaitable[None]]] = {
            "database": self.check_database,
            "broker": self.check_broker,
        }
        if self._consumed:
            checks["consumers"] = self.check_consumers
        return checks
