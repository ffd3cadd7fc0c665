"""One order's trace across the four services, exported over OTLP/HTTP to a receiver this test runs.

The stack runs with ``OTEL_EXPORTER_OTLP_ENDPOINT`` pointing at a small OTLP receiver in this process (it
decodes each ``ExportTraceServiceRequest`` with opentelemetry-proto), and a short batch delay so the spans
arrive while the test waits. The test plays the storefront: it sends one ``traceparent`` on the order and
on the checkout, as a browser journey traced by OpenTelemetry would. Then one trace must hold the order's
placement, the checkout (and its calls to order-service and Stripe), the fulfilment of the webhook (linked
from the webhook's own request, since Stripe sends no trace context), OrderPaid through the outbox and the
broker, the provisioner's calls to the panel and the status projection of each event, joined by parent
span ids (and the one link). ``pytest -s`` prints the trace.
"""

from __future__ import annotations

import http.server
import secrets
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from devstack import Stack
from provisioner.queues import PROVISIONER_ORDER_PAID
from status_service.queues import STATUS_PROJECTION

from .conftest import customer_token
from .support import Api, eventually

pytestmark = pytest.mark.integration

KINDS = {0: "unspecified", 1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}


@dataclass(frozen=True)
class Link:
    trace_id: str
    span_id: str


@dataclass(frozen=True)
class ReceivedSpan:
    service: str
    name: str
    kind: str
    trace_id: str
    span_id: str
    parent_id: str
    start: int
    attributes: dict[str, Any]
    links: tuple[Link, ...] = field(default=())


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind in ("string_value", "bool_value", "int_value", "double_value") else str(value)


class OtlpReceiver:
    """An OTLP/HTTP traces endpoint (``POST /v1/traces``, protobuf) that keeps every span it is sent."""

    def __init__(self) -> None:
        self.spans: list[ReceivedSpan] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path != "/v1/traces":
                    self.send_error(404)
                    return
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                receiver.add(request)
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="otlp-receiver", daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def add(self, request: ExportTraceServiceRequest) -> None:
        received: list[ReceivedSpan] = []
        for resource_spans in request.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    received.append(
                        ReceivedSpan(
                            service=str(resource.get("service.name")),
                            name=span.name,
                            kind=KINDS.get(span.kind, str(span.kind)),
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_id=span.parent_span_id.hex(),
                            start=span.start_time_unix_nano,
                            attributes={a.key: _value(a.value) for a in span.attributes},
                            links=tuple(Link(link.trace_id.hex(), link.span_id.hex()) for link in span.links),
                        )
                    )
        with self._lock:
            self.spans.extend(received)

    def snapshot(self) -> list[ReceivedSpan]:
        with self._lock:
            return list(self.spans)

    def __enter__(self) -> OtlpReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as running:
        yield running


@pytest.fixture(scope="module")
def traced_stack(make_stack: Callable[..., Stack], receiver: OtlpReceiver) -> Stack:
    return make_stack(
        extra_env={
            "DB_POOL_SIZE": "4",
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "200",
        }
    )


@pytest.fixture
async def traced_api(traced_stack: Stack) -> AsyncIterator[Api]:
    async with Api(traced_stack.config) as client:
        yield client


class Trace:
    """The spans of one trace id, with the walks the assertions need."""

    def __init__(self, trace_id: str, spans: list[ReceivedSpan]) -> None:
        self.trace_id = trace_id
        self.spans = [s for s in spans if s.trace_id == trace_id]
        self.by_id = {s.span_id: s for s in self.spans}

    def find(self, service: str, name: str, **attributes: Any) -> list[ReceivedSpan]:
        return [
            s
            for s in self.spans
            if s.service == service and s.name == name and all(s.attributes.get(k) == v for k, v in attributes.items())
        ]

    def one(self, service: str, name: str, **attributes: Any) -> ReceivedSpan:
        found = self.find(service, name, **attributes)
        assert len(found) == 1, f"{service} {name} {attributes}: {len(found)} spans\n{self.render()}"
        return found[0]

    def first(self, service: str, name: str, **attributes: Any) -> ReceivedSpan:
        """The earliest such span (a redelivery, or a stored event tried again, would add another)."""
        found = self.find(service, name, **attributes)
        assert found, f"no {service} {name} {attributes}\n{self.render()}"
        return min(found, key=lambda s: s.start)

    def descends(self, span: ReceivedSpan, ancestor: ReceivedSpan) -> bool:
        seen: set[str] = set()
        parent = span.parent_id
        while parent and parent not in seen:
            if parent == ancestor.span_id:
                return True
            seen.add(parent)
            above = self.by_id.get(parent)
            parent = above.parent_id if above is not None else ""
        return False

    def render(self, root_id: str = "", *, title: str = "(storefront) the customer's journey, the test's span") -> str:
        """The tree: one line per span (service, kind, name, what it touched), children indented."""
        children: dict[str, list[ReceivedSpan]] = {}
        for s in self.spans:
            parent = s.parent_id if s.parent_id in self.by_id else root_id
            children.setdefault(parent, []).append(s)
        lines: list[str] = [f"trace {self.trace_id}", title]

        def walk(parent: str, depth: int) -> None:
            for s in sorted(children.get(parent, []), key=lambda x: x.start):
                lines.append(f"{'  ' * depth}{_line(s)}")
                walk(s.span_id, depth + 1)

        walk(root_id, 1)
        return "\n".join(lines)


def _line(s: ReceivedSpan) -> str:
    detail = s.attributes.get("spawnpoint.event_type") or s.attributes.get("url.full") or ""
    links = "".join(f"  --link--> {link.span_id}" for link in s.links)
    return f"[{s.service}] {s.kind:<8} {s.name}{f'  ({detail})' if detail else ''}  span={s.span_id}{links}"


async def test_one_order_is_one_trace_across_the_four_services(
    traced_api: Api, traced_stack: Stack, receiver: OtlpReceiver
) -> None:
    api, namespace = traced_api, traced_stack.config.namespace
    trace_id, root_id = secrets.token_hex(16), secrets.token_hex(8)
    journey = {"traceparent": f"00-{trace_id}-{root_id}-01"}
    token = customer_token()

    placed = await api.http.post(
        api.url("order-service", "/orders"),
        headers={**api.auth(token), **journey, "Idempotency-Key": str(uuid.uuid4())},
        json={"game_id": "minecraft-paper", "plan_id": "starter", "server_name": "Traced world", "settings": {}},
    )
    assert placed.status_code == 201, placed.text
    order_id = placed.json()["id"]
    checkout = await api.http.post(
        api.url("payment-service", "/checkout-sessions"),
        headers={**api.auth(token), **journey},
        json={"order_id": order_id},
    )
    assert checkout.status_code == 201, checkout.text
    assert (await api.stripe_pay(checkout.json()["session_id"])).status_code == 200
    await api.wait_status(token, order_id, "CREATED")

    panel = traced_stack.config.url("panel-fake")
    order_paid_queue = f"process {namespace}{PROVISIONER_ORDER_PAID.name}"
    projection = f"process {namespace}{STATUS_PROJECTION.name}"

    async def whole_trace() -> Trace | None:
        found = Trace(trace_id, receiver.snapshot())
        projected = {s.attributes.get("spawnpoint.event_type") for s in found.find("status-service", projection)}
        ready = (
            {"OrderCreated", "OrderPaid", "ServerCreated"} <= projected
            and found.find("provisioner", order_paid_queue)
            and any(str(s.attributes.get("url.full", "")).startswith(panel) for s in found.spans)
        )
        return found if ready else None

    try:
        trace = await eventually(whole_trace, timeout=30, interval=0.2, what="the order's spans at the receiver")
    except AssertionError as missing:
        spans = receiver.snapshot()
        raise AssertionError(
            f"{missing}\n{Trace(trace_id, spans).render(root_id)}\n({len(spans)} spans in all)"
        ) from None
    everything = receiver.snapshot()
    webhook_traces = [
        Trace(t, everything)
        for t in sorted({s.trace_id for s in everything if s.name == "POST /webhooks/stripe"})
        if any(s.attributes.get("spawnpoint.order_id") == order_id for s in everything if s.trace_id == t)
    ]
    print("\n" + trace.render(root_id))
    for webhook in webhook_traces:
        print(webhook.render(title="linked: the Stripe webhook (Stripe sends no traceparent)"))

    # Placement: the storefront's journey -> POST /orders -> OrderCreated published -> projected.
    placement = trace.one("order-service", "POST /orders")
    assert placement.parent_id == root_id and placement.kind == "server"
    created = trace.first("status-service", projection, **{"spawnpoint.event_type": "OrderCreated"})
    assert trace.descends(created, placement)
    assert trace.by_id[created.parent_id].kind == "producer", "the projection's parent is the relay's publish"

    # Checkout: the same journey; it reads the order from order-service and opens the session at Stripe.
    opened = trace.one("payment-service", "POST /checkout-sessions")
    assert opened.parent_id == root_id
    read = trace.one("order-service", "GET /orders/{order_id}")
    assert trace.descends(read, opened) and trace.by_id[read.parent_id].service == "payment-service"
    stripe = traced_stack.config.url("stripe-fake")
    assert any(
        trace.descends(s, opened) for s in trace.spans if str(s.attributes.get("url.full", "")).startswith(stripe)
    )

    # The webhook: a trace of its own (Stripe sends no traceparent), linked to the checkout it pays for; the
    # fulfilment is a child of the checkout (its context came back in the session's metadata).
    assert webhook_traces, "the webhook's request was traced"
    links = [link for w in webhook_traces for s in w.spans for link in s.links]
    assert links and all(link.trace_id == trace_id for link in links), links
    assert all(link.span_id in trace.by_id for link in links)
    assert all(trace.descends(trace.by_id[link.span_id], opened) for link in links), "linked to the checkout"
    fulfilled = trace.first("payment-service", "apply checkout.session.completed")
    assert trace.descends(fulfilled, opened) and fulfilled.kind == "consumer"
    assert trace.by_id[fulfilled.parent_id].service == "payment-service"

    # OrderPaid: staged by the fulfilment, published by the relay, consumed by the provisioner, which calls
    # the panel; ServerCreated, staged there, is projected by status-service.
    provisioned = trace.first("provisioner", order_paid_queue)
    assert trace.descends(provisioned, fulfilled)
    assert trace.by_id[provisioned.parent_id].kind == "producer"
    panel_calls = [s for s in trace.spans if trace.descends(s, provisioned) and s.kind == "client"]
    assert all(str(call.attributes.get("url.full")).startswith(panel) for call in panel_calls)
    assert any(
        call.name == "POST" and call.attributes.get("url.full") == f"{panel}/api/application/servers"
        for call in panel_calls
    ), "the server's creation at the panel is in the order's trace"
    paid = trace.first("status-service", projection, **{"spawnpoint.event_type": "OrderPaid"})
    assert trace.descends(paid, fulfilled)
    server_created = trace.first("status-service", projection, **{"spawnpoint.event_type": "ServerCreated"})
    assert trace.descends(server_created, provisioned)
    assert any(s.name == "project_event" and s.parent_id == server_created.span_id for s in trace.spans)

    assert {"order-service", "payment-service", "provisioner", "status-service"} <= {s.service for s in trace.spans}
    probes = [s for s in receiver.snapshot() if s.name.endswith(("/healthz", "/readyz", "/metrics"))]
    assert not probes, "probes and scrapes are not traced"
