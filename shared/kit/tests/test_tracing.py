"""Traces across the outbox, the broker and HTTP (``spawnpoint_kit.tracing``): a staged event carries the
staging span's context through the relay to the consumer, against the real PostgreSQL and RabbitMQ; with
tracing off no SDK, exporter or instrumentation is even imported; with an endpoint set, the real
configuration path traces FastAPI's requests (its own telemetry, the probes left out) and httpx's calls."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid

import aio_pika
import pytest
import sqlalchemy as sa
from faststream.rabbit import RabbitBroker
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from spawnpoint_contracts import PaymentProcessing, PaymentProcessingPayload
from spawnpoint_kit import tracing
from spawnpoint_kit.messaging.consumer import Consumers
from spawnpoint_kit.messaging.delivery import DeadLetter
from spawnpoint_kit.messaging.handlers import Subscription
from spawnpoint_kit.messaging.outbox import stage_event
from spawnpoint_kit.messaging.relay import OutboxRelay
from spawnpoint_kit.messaging.specs import QueueSpec
from spawnpoint_kit.messaging.topology import Topology
from spawnpoint_kit.settings import CommonSettings
from spawnpoint_kit.testing import eventually
from spawnpoint_kit.unit_of_work import FakeUnitOfWork

pytestmark = pytest.mark.component


def _event() -> PaymentProcessing:
    return PaymentProcessing(
        order_id=uuid.uuid4(),
        correlation_id="c-trace",
        producer="test",
        payload=PaymentProcessingPayload(session_id="s"),
    )


def _named(spans: tuple[ReadableSpan, ...], name: str) -> ReadableSpan:
    found = [s for s in spans if s.name == name]
    assert len(found) == 1, [s.name for s in spans]
    return found[0]


async def test_an_event_staged_in_a_request_continues_its_trace_through_the_relay_to_the_consumer(
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    broker: RabbitBroker,
    topology: Topology,
    settings: CommonSettings,
    amqp: aio_pika.abc.AbstractRobustConnection,
    database_url: str,
) -> None:
    async with engine.begin() as conn:
        await conn.execute(sa.text("DELETE FROM outbox"))
    spec = QueueSpec("work", ("payment.processing.v1",))
    exporter = InMemorySpanExporter()
    seen: list[dict[str, object]] = []
    uow = FakeUnitOfWork()

    async def on_processing(event: PaymentProcessing, unit: FakeUnitOfWork) -> None:
        assert unit.delivery is not None
        seen.append(dict(unit.delivery.headers))
        if event.correlation_id == "poison":
            raise DeadLetter("test_poison", "refused by the test")

    consumer_broker = RabbitBroker(settings.broker_url.get_secret_value(), apply_types=False)
    with tracing.capture(exporter, service="kit-tests"):
        consumers = Consumers(consumer_broker, topology, lambda: uow, service="kit-tests")
        consumers.subscribe(Subscription(spec, {PaymentProcessing: [on_processing]}, unit_of_work=lambda: uow))
        await topology.declare(broker, [spec])
        await consumer_broker.connect()
        await consumer_broker.start()
        try:
            event = _event()
            with tracing.span("POST /orders", kind="server") as request:
                async with sessions() as session:
                    row = await stage_event(session, event, topology)
                    staged = dict(row.headers)
                    await session.commit()
            request_ids = request.get_span_context()
            assert staged[tracing.TRACEPARENT].startswith(f"00-{request_ids.trace_id:032x}-{request_ids.span_id:016x}-")

            relay = OutboxRelay(engine, broker, database_url=database_url)
            assert await relay.drain_once() == 1
            await eventually(lambda: _ended(exporter, f"process {topology.queue_name(spec)}"), what="consumed")

            # A message that carries no trace context starts a trace of its own; a dead-lettered one fails.
            channel = await amqp.channel()
            exchange = await channel.get_exchange(topology.events_exchange.name)
            poison = _event().model_copy(update={"correlation_id": "poison"})
            await exchange.publish(
                aio_pika.Message(poison.to_json_bytes(), message_id=str(poison.event_id)),
                routing_key=poison.routing_key,
            )
            await eventually(lambda: _ended(exporter, f"process {topology.queue_name(spec)}", 2), what="poison")
            await channel.close()
        finally:
            await consumer_broker.stop()

    spans = exporter.get_finished_spans()
    published = _named(spans, f"publish {topology.events_exchange.name}")
    processed = [s for s in spans if s.name == f"process {topology.queue_name(spec)}"]
    traced, untraced = sorted(processed, key=lambda s: s.parent is None)
    handler = [s for s in spans if s.name == "on_processing"]

    assert published.kind == SpanKind.PRODUCER and published.parent is not None
    assert published.parent.span_id == request_ids.span_id, "the relay continues the staging request's trace"
    assert published.context is not None and published.context.trace_id == request_ids.trace_id
    assert traced.kind == SpanKind.CONSUMER and traced.parent is not None
    assert traced.parent.span_id == published.context.span_id, "the consumer's parent is the publish span"
    assert traced.attributes is not None and traced.attributes["messaging.system"] == "rabbitmq"
    assert traced.attributes["messaging.message.id"] == str(event.event_id)
    assert traced.attributes["spawnpoint.order_id"] == str(event.order_id)
    assert str(seen[0][tracing.TRACEPARENT]).startswith(
        f"00-{request_ids.trace_id:032x}-{published.context.span_id:016x}-"
    )
    assert traced.context is not None
    assert any(h.parent is not None and h.parent.span_id == traced.context.span_id for h in handler)

    assert untraced.parent is None and untraced.context is not None
    assert untraced.context.trace_id != request_ids.trace_id
    assert untraced.status.status_code == StatusCode.ERROR
    assert "test_poison" in (untraced.status.description or "")
    assert not tracing.ENABLED, "capture turns tracing off again"


async def _ended(exporter: InMemorySpanExporter, name: str, count: int = 1) -> bool:
    return sum(1 for s in exporter.get_finished_spans() if s.name == name) >= count


async def test_with_tracing_off_a_staged_event_carries_no_trace_headers(
    sessions: async_sessionmaker[AsyncSession], topology: Topology
) -> None:
    assert not tracing.ENABLED
    async with sessions() as session:
        row = await stage_event(session, _event(), topology)
        await session.rollback()
    assert set(row.headers) == {"event_type", "event_version"}


_OFF = """
import sys
import spawnpoint_kit.http, spawnpoint_kit.runtime, spawnpoint_kit.messaging.consumer, spawnpoint_kit.logs
from spawnpoint_kit import tracing
from opentelemetry import trace
assert not tracing.configure("order-service")
# FastAPI imports the API itself (its native telemetry, idle without a provider); the SDK, the exporter
# and the instrumentations stay unloaded, and the global provider is still the API's placeholder.
heavy = ("opentelemetry.sdk", "opentelemetry.exporter", "opentelemetry.instrumentation")
loaded = sorted(m for m in sys.modules if m.startswith(heavy))
assert not loaded, loaded
assert type(trace.get_tracer_provider()).__name__ == "ProxyTracerProvider", trace.get_tracer_provider()
print("off")
"""

_ON = """
import asyncio, http.server, os, threading
import httpx
from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from spawnpoint_kit import tracing
from spawnpoint_kit.http import install_common

assert tracing.configure("order-service") and tracing.configure("ignored")
provider = trace.get_tracer_provider()
assert isinstance(provider, TracerProvider), provider
assert provider.resource.attributes["service.name"] == "order-service"
memory = InMemorySpanExporter()
provider.add_span_processor(SimpleSpanProcessor(memory))

class Echo(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = (self.headers.get("traceparent") or "").encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass

upstream = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Echo)
threading.Thread(target=upstream.serve_forever, daemon=True).start()
app = FastAPI()
install_common(app, checks={})

@app.get("/things/{thing_id}")
async def thing(thing_id: str) -> dict[str, str]:
    async with httpx.AsyncClient() as client:
        sent = (await client.get(f"http://127.0.0.1:{upstream.server_port}/")).text
    return {"sent": sent}

async def main():
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://app") as client:
        answer = (await client.get("/things/1", headers={"traceparent": parent})).json()
        await client.get("/healthz")
    return answer

answer = asyncio.run(main())
spans = {s.name: s for s in memory.get_finished_spans()}
server = spans["GET /things/{thing_id}"]
assert server.parent.span_id == 0xb7ad6b7169203331 and server.context.trace_id == 0x0af7651916cd43dd8448eb211c80319c
assert server.attributes["spawnpoint.correlation_id"]
client, endpoint = spans["GET"], spans["fastapi.endpoint"]
assert client.parent.span_id == endpoint.context.span_id and endpoint.parent.span_id == server.context.span_id
assert answer["sent"].startswith(f"00-{client.context.trace_id:032x}-{client.context.span_id:016x}-"), answer
servers = [s for s in memory.get_finished_spans() if s.kind == trace.SpanKind.SERVER]
assert len(servers) == 1, [s.name for s in servers]  # FastAPI's own telemetry, once per request
assert {"fastapi.endpoint", "fastapi.dependencies"} <= set(spans), list(spans)
assert not any("healthz" in name for name in spans), list(spans)
print("on", flush=True)
os._exit(0)  # not the exit-time flush to an endpoint nobody listens on
"""


def _python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.unit
def test_with_no_endpoint_no_provider_exporter_or_instrumentation_is_loaded() -> None:
    done = _python(_OFF)
    assert done.returncode == 0 and done.stdout.strip() == "off", done.stderr[-2000:]


@pytest.mark.unit
def test_with_an_endpoint_requests_and_http_calls_are_traced_and_probes_are_not() -> None:
    # Nothing listens there: the batch exporter's failures are its own business, never the request's.
    done = _python(_ON, OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9", OTEL_BSP_SCHEDULE_DELAY="60000")
    assert done.returncode == 0 and done.stdout.strip().endswith("on"), done.stderr[-3000:]


@pytest.mark.unit
def test_the_sdk_switch_and_the_endpoint_decide() -> None:
    assert not tracing.endpoint_configured({})
    assert tracing.endpoint_configured({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})
    assert tracing.endpoint_configured({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"})
    assert not tracing.endpoint_configured(
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"}
    )
