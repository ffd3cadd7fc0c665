"""What the tracing hooks cost on the message path, in microseconds per message, without I/O.

Times the kit's own per-message code with the database and the broker replaced by stand-ins that do nothing
(so the figure is the kit's CPU, the part the hooks could slow down):

- ``stage``: ``outbox.stage_event`` (headers, wire checks, the row) on a session that does nothing;
- ``publish``: the relay's ``_publish`` of one claimed row to a broker that does nothing;
- ``consume``: the consumer's ``_dispatch_once`` (parse, inbox claim, one handler, commit) with the
  in-memory unit of work.

Run it against the kit as it is and against an older kit to compare, tracing off::

    .venv/bin/python shared/kit/benchmarks/tracing_overhead.py
    git archive HEAD shared/kit/src | tar -x -C /tmp/kit-before
    PYTHONPATH=/tmp/kit-before/shared/kit/src .venv/bin/python shared/kit/benchmarks/tracing_overhead.py

With ``--traced`` (this kit only) the same paths run with tracing on, every span handed to an exporter that
drops it: the price of the spans themselves.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime
from typing import Any

from spawnpoint_contracts import PaymentProcessing, PaymentProcessingPayload
from spawnpoint_kit.messaging.consumer import Consumers
from spawnpoint_kit.messaging.delivery import Delivery
from spawnpoint_kit.messaging.handlers import Subscription
from spawnpoint_kit.messaging.outbox import stage_event
from spawnpoint_kit.messaging.relay import OutboxRelay
from spawnpoint_kit.messaging.specs import QueueSpec
from spawnpoint_kit.messaging.topology import Topology
from spawnpoint_kit.unit_of_work import FakeUnitOfWork


class _Driver:
    """Enough of an asyncpg connection for ``stage_rows``: the rows are dropped, the NOTIFY goes nowhere."""

    async def executemany(self, *_: Any) -> None:
        return None

    async def execute(self, *_: Any) -> None:
        return None


class _Fairy:
    dbapi_connection = type("Adapted", (), {"_transaction": object()})()
    driver_connection = _Driver()


class _Connection:
    async def get_raw_connection(self) -> _Fairy:
        return _Fairy()


class _Session:
    """Enough of an AsyncSession for ``stage_event`` (``db.driver_connection`` finds a transaction begun)."""

    async def connection(self) -> _Connection:
        return _Connection()


class _Broker:
    async def publish(self, *_: Any, **__: Any) -> None:
        return None


def _event() -> PaymentProcessing:
    return PaymentProcessing(
        order_id=uuid.uuid4(),
        correlation_id="c-bench",
        producer="bench",
        payload=PaymentProcessingPayload(session_id="s"),
    )


async def _time(step: Callable[[], Awaitable[None]], *, rounds: int, per_round: int) -> float:
    """The best over ``rounds`` of the mean time of one step, in microseconds: the minimum, because on a
    shared machine every other figure measures the neighbours as much as the code."""
    for _ in range(per_round):  # warm up
        await step()
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(per_round):
            await step()
        samples.append((time.perf_counter() - started) / per_round * 1e6)
    return min(samples)


async def main(traced: bool, rounds: int, per_round: int) -> None:
    topology = Topology("bench.")
    session: Any = _Session()
    event = _event()
    headers: dict[str, Any] = {"event_type": event.event_type, "event_version": event.event_version}
    row: dict[str, Any] = {
        "id": event.event_id,
        "exchange": "bench.spawnpoint.events",
        "routing_key": event.routing_key,
        "message_type": event.event_type,
        "body": event.to_json_bytes(),
        "headers": headers,
        "correlation_id": event.correlation_id,
        "created_at": datetime.now(UTC),
        "attempts": 0,
    }
    relay = OutboxRelay(None, _Broker(), database_url="postgresql+asyncpg://u@h/db")  # type: ignore[arg-type]

    async def handle(_: PaymentProcessing, __: FakeUnitOfWork) -> None:
        return None

    uow = FakeUnitOfWork()
    subscription = Subscription(QueueSpec("work", ()), {PaymentProcessing: [handle]}, unit_of_work=lambda: uow)
    consumers = Consumers(None, topology, lambda: uow, service="bench")  # type: ignore[arg-type]

    async def stage_once() -> None:
        await stage_event(session, event, topology)

    stage: Callable[[], Awaitable[None]] = stage_once

    async def publish() -> None:
        await relay._publish(row)

    async def consume() -> None:
        fresh = _event()  # a new id each time: the inbox would skip a repeat
        delivery = Delivery.of(fresh, "bench.work", headers=dict(headers))
        await consumers._dispatch_once(delivery, subscription)

    context: AbstractContextManager[Any] = nullcontext()
    if traced:
        from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

        from spawnpoint_kit import tracing

        class Dropped(SpanExporter):
            def export(self, spans: Any) -> SpanExportResult:
                return SpanExportResult.SUCCESS

        context = tracing.capture(Dropped(), service="bench")
    with context:
        if traced:  # as in a service: staged inside a request's span, published with the stored context
            headers["traceparent"] = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
            stage = _in_a_request(stage)
        for name, step in (("stage", stage), ("publish", publish), ("consume", consume)):
            micros = await _time(step, rounds=rounds, per_round=per_round)
            print(f"{name:<8} {micros:8.2f} us per message")


def _in_a_request(step: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
    from spawnpoint_kit import tracing

    async def traced() -> None:
        with tracing.span("request", kind="server"):
            await step()

    return traced


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--traced", action="store_true", help="tracing on (spans dropped by the exporter)")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--per-round", type=int, default=1000)
    args = parser.parse_args()
    asyncio.run(main(args.traced, args.rounds, args.per_round))
