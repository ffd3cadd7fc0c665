"""What projecting one event costs status-service in CPU, through the real consumer path.

Why it exists: in the pipeline benchmark status-service spends more CPU per order than any service but
payment-service, nearly all of it projecting. This measures that path alone, against a throw-away database on
the running PostgreSQL (migrated with the service's own migrations, dropped at the end): every event goes
through ``handlers.apply_event``, the consumer's own subscription, so each one is an inbox claim, the real
``project_event`` in the real ``SqlStatusUnitOfWork`` and a commit, exactly as a delivery from the queue.

Each order gets the events a paid order produces and status-service's queue (bound to ``#``) receives, in
the order they usually arrive: OrderCreated, the ``order_placed`` NotificationSent, PaymentProcessing (the
delayed-payment step, which brings it to the 9 events per order the pipeline measured), OrderPaid,
RentalChanged v1, DesiredServerStateChanged v1, ServerCreated, ServerInstalled and the ``server_ready``
NotificationSent. ``--shuffle`` delivers each order's
events in a random order instead (the out-of-order path), ``--duplicates`` redelivers that share of them.
``--concurrency`` orders are projected at once (the consumer's prefetch), each order's events one by one,
each delivery in a transaction of its own; ``--batched`` sends them all through one subscription, as the
service does, so that deliveries in flight together share a transaction (the kit's group commit).

The figures are this process's CPU (``time.process_time``) per event and per order, which is what
status-service's CPU per order is made of (PostgreSQL's own CPU is not in it), and the statements sent per
event, split into transaction control (BEGIN, COMMIT) and the rest, counted in the driver (a wrapper of a
microsecond or so around each statement). Run it against the service as it is and against older sources,
one after the other::

    scripts/setup_env.sh .venv/bin/python services/status-service/benchmarks/projection_cost.py
    mkdir -p /tmp/status-before && git archive HEAD services/status-service | tar -x -C /tmp/status-before
    PYTHONPATH=/tmp/status-before/services/status-service/src scripts/setup_env.sh .venv/bin/python \\
        services/status-service/benchmarks/projection_cost.py
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import logging
import os
import random
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import asyncpg.prepared_stmt
import sqlalchemy as sa

from spawnpoint_contracts import (
    DesiredServerState,
    Event,
    NotificationSent,
    NotificationSentPayload,
    RentalCause,
    RentalPhase,
)
from spawnpoint_kit.db import drop_database, make_engine, make_session_factory, prepare_database
from spawnpoint_kit.logs import configure_logging
from spawnpoint_kit.messaging.delivery import Delivery
from spawnpoint_kit.messaging.topology import Topology
from status_service.queues import STATUS_PROJECTION
from status_service.service_layer.handlers import apply_event, projection_subscription
from status_service.service_layer.unit_of_work import SqlStatusUnitOfWork

SERVICE = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(SERVICE / "tests"))  # the tests' event factory: real contract models, real shapes
from status_service_support import OrderStory, at, on, redelivered  # noqa: E402


def order_events(story: OrderStory) -> list[Event]:
    """One paid order's events, in the order they usually arrive (times in seconds after the order)."""

    def sent(kind: str, cause: str, t: float) -> NotificationSent:
        return NotificationSent(
            order_id=story.order_id,
            occurred_at=at(t),
            correlation_id=story.correlation_id,
            producer="notification-service",
            payload=NotificationSentPayload(
                kind=kind,
                message_id=f"<{uuid.uuid4().hex}@spawnpoint.test>",
                recipient="customer",
                locale="en",
                attempts=1,
                caused_by=cause,
            ),
        )

    return [
        story.created(t=0),
        sent("order_placed", "OrderCreated", 1),
        story.processing(t=4),
        story.paid(t=5),
        story.rental(1, RentalPhase.ACTIVE, RentalCause.ACTIVATED, t=5, renews_at=on(12, 1), paid_through=on(12, 1)),
        story.desired(1, DesiredServerState.RUNNING, RentalCause.ACTIVATED, t=5),
        story.server_created(t=6),
        story.installed(t=30),
        sent("server_ready", "ServerInstalled", 31),
    ]


@dataclass
class Statements:
    """Statements the driver sent, counted by wrapping asyncpg's few execution entry points."""

    control: int = 0
    """BEGIN, COMMIT, ROLLBACK (simple queries without parameters)."""
    other: int = 0

    def install(self) -> None:
        connection, prepared = asyncpg.Connection, asyncpg.prepared_stmt.PreparedStatement

        def counted(original: Callable[..., Awaitable[Any]], simple: bool) -> Callable[..., Awaitable[Any]]:
            @functools.wraps(original)
            async def wrapper(*args: Any, **kwargs: Any) -> Any:
                if simple and len(args) == 2 and not kwargs:  # execute(query) without arguments
                    self.control += 1
                elif not simple:
                    self.other += 1
                return await original(*args, **kwargs)

            return wrapper

        connection.execute = counted(connection.execute, simple=True)
        connection._execute = counted(connection._execute, simple=False)
        connection._executemany = counted(connection._executemany, simple=False)
        # SQLAlchemy's statements run as prepared statements of asyncpg's own.
        name = "_PreparedStatement__bind_execute"
        setattr(prepared, name, counted(getattr(prepared, name), simple=False))


@dataclass(frozen=True)
class Result:
    orders: int
    events: int
    cpu_ms: float
    wall_s: float
    control: int
    other: int


async def measure(
    orders: int, concurrency: int, warmup: int, *, shuffle: bool, duplicates: float, batched: bool
) -> Result:
    url = f"{os.environ['SPAWNPOINT_PG_URL']}/sp_bench_status_{uuid.uuid4().hex[:8]}"
    await prepare_database(SERVICE / "alembic.ini", url)
    engine = make_engine(url, pool_size=concurrency)
    statements = Statements()
    rng = random.Random(14)
    try:
        sessions = make_session_factory(engine)

        def unit_of_work() -> SqlStatusUnitOfWork:
            return SqlStatusUnitOfWork(sessions, Topology())

        def arrivals(count: int) -> list[list[Event]]:
            out = []
            for _ in range(count):
                events = order_events(OrderStory(user_id=f"user-{rng.randrange(10_000)}"))
                if shuffle:
                    rng.shuffle(events)
                for event in list(events):
                    if rng.random() < duplicates:
                        events.insert(rng.randrange(events.index(event) + 1, len(events) + 1), redelivered(event))
                out.append(events)
            return out

        subscription = projection_subscription(unit_of_work)

        async def deliver(event: Event) -> None:
            if batched:  # the service's one subscription: deliveries in flight together share a transaction
                await subscription.handle(event, Delivery.of(event, STATUS_PROJECTION.name))
            else:  # a transaction of its own for every delivery
                await apply_event(unit_of_work, event)

        async def run(batch: list[list[Event]]) -> None:
            queue = list(reversed(batch))

            async def worker() -> None:
                while queue:
                    for event in queue.pop():
                        await deliver(event)

            await asyncio.gather(*(worker() for _ in range(concurrency)))

        # Warm-up: connections, prepared statements, SQLAlchemy's compiled-statement cache, imports.
        await run(arrivals(warmup))
        measured = arrivals(orders)
        statements.install()
        cpu, wall = time.process_time(), time.perf_counter()
        await run(measured)
        cpu_ms = (time.process_time() - cpu) * 1000
        wall_s = time.perf_counter() - wall
        async with engine.connect() as conn:
            ready = (
                await conn.execute(
                    sa.text("SELECT count(*) FROM order_status WHERE phase = 'ready' AND order_id = ANY(:ids)"),
                    {"ids": [events[0].order_id for events in measured]},
                )
            ).scalar_one()
        if ready != orders:
            raise SystemExit(f"only {ready} of {orders} orders ended ready: the projection is broken")
        return Result(orders, sum(len(e) for e in measured), cpu_ms, wall_s, statements.control, statements.other)
    finally:
        await engine.dispose()
        await drop_database(url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=40, help="orders projected before measuring")
    parser.add_argument("--shuffle", action="store_true", help="each order's events in a random order")
    parser.add_argument("--duplicates", type=float, default=0.0, help="share of events delivered twice")
    parser.add_argument(
        "--batched", action="store_true", help="one subscription for all workers, as the service runs it (group commit)"
    )
    args = parser.parse_args()
    # The service's own JSON log lines (one per visible change), rendered as in production and thrown away.
    configure_logging("status-service", fmt="json")
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(open(os.devnull, "w"))  # noqa: SIM115 - open for the process's life
    r = asyncio.run(
        measure(
            args.orders,
            args.concurrency,
            args.warmup,
            shuffle=args.shuffle,
            duplicates=args.duplicates,
            batched=args.batched,
        )
    )
    print(
        f"{r.orders} orders, {r.events} deliveries ({r.events / r.orders:.1f} per order), "
        f"concurrency {args.concurrency}{', shuffled' if args.shuffle else ''}{', batched' if args.batched else ''}"
        f"{f', {args.duplicates:.0%} duplicates' if args.duplicates else ''}"
    )
    print(f"CPU: {r.cpu_ms / r.events:.3f} ms per event, {r.cpu_ms / r.orders:.1f} ms per order")
    print(
        f"statements per event: {r.other / r.events:.2f} (+ {r.control / r.events:.2f} BEGIN/COMMIT); "
        f"{r.events / r.wall_s:.0f} events/s"
    )


if __name__ == "__main__":
    main()
