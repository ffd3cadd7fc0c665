"""OpenTelemetry traces for every service: on when an OTLP endpoint is configured, absent when not.

One order crosses four processes, two of them only through RabbitMQ, and a Stripe webhook that carries no
trace context at all. This module is the one place that knows how a trace follows it (docs/tracing.md):

- **On** when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is set and
  ``OTEL_SDK_DISABLED`` is not ``true``. ``configure(service)``, called by ``ServiceRuntime``, installs the
  SDK's tracer provider (``service.name`` = the service unless ``OTEL_SERVICE_NAME`` says otherwise), a
  ``BatchSpanProcessor`` and the OTLP exporter over HTTP/protobuf; every other ``OTEL_*`` variable
  (``OTEL_BSP_SCHEDULE_DELAY``, ``OTEL_TRACES_SAMPLER``, ``OTEL_EXPORTER_OTLP_HEADERS`` ...) is read by the SDK
  as documented upstream. It also instruments httpx for the whole process (every client: the Stripe SDK's,
  the panel's, order-service's). HTTP servers need nothing more: FastAPI's own telemetry traces every
  request of every app (a SERVER span per request, a child of the caller's ``traceparent``, plus its
  dependency, endpoint and serialization spans) as soon as a provider is installed; the probes and the
  metrics scrape (``UNTRACED_PATHS``) are left out by the sampler.
- **Off** otherwise: no SDK, provider, processor, exporter or instrumentation is loaded (FastAPI imports
  the API for its own telemetry, which finds no provider and stands aside), and every hook in the kit is
  one ``if tracing.ENABLED:`` (a module attribute read) on its hot path. Read ``ENABLED`` through the
  module (``tracing.ENABLED``), never ``from ... import ENABLED``.
- **Messages**: the span current when an event is staged is written into the outbox row's ``headers`` as W3C
  ``traceparent`` / ``tracestate`` (``current_headers``; nothing else, baggage included, is persisted). The
  relay publishes such a row in a PRODUCER span that is its child and puts *that* span's context on the
  AMQP message (``publishing``); a consumer handles each delivery in a CONSUMER span whose parent comes from
  the message's headers (``consuming``), with one INTERNAL span per handler of the table (``span``).

The helpers below other than ``configure``, ``capture`` and ``shutdown`` may be called
only while ``ENABLED`` is true: callers test it first, so that the path with tracing off does no work.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.sdk.trace.sampling import Sampler
    from opentelemetry.trace import Span, SpanContext, Tracer
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

ENABLED = False
"""True once this process exports spans. Hooks test it before calling anything else here."""

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
TRACE_HEADERS = (TRACEPARENT, TRACESTATE)
"""The W3C Trace Context headers: what an outbox row, an AMQP message and a Stripe session carry."""

UNTRACED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
"""Requests never traced: the probes and the scrape, several a minute per pod, are noise and cost."""

SpanKindName = Literal["internal", "consumer", "producer", "client", "server"]

_tracer: Tracer | None = None
_provider: TracerProvider | None = None
_propagator: TraceContextTextMapPropagator | None = None


def endpoint_configured(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the environment asks for traces: an OTLP endpoint is set and the SDK is not disabled."""
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return bool(env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def configure(service: str, *, environ: Mapping[str, str] | None = None) -> bool:
    """Turn tracing on for this process when the environment asks for it; True when it is on.

    Idempotent (the first call wins: one process is one service). Installs the provider globally, so that
    any library's or service's ``opentelemetry.trace.get_tracer(...)`` exports through it too."""
    if ENABLED or not endpoint_configured(environ):
        return ENABLED
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    # The stable HTTP conventions (http.request.method, http.route, url.path ...) rather than the old
    # experimental ones the instrumentations still emit by default; an operator's own choice stands.
    os.environ.setdefault("OTEL_SEMCONV_STABILITY_OPT_IN", "http")
    provider = _provider_for(service)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _activate(provider)
    _instrument_httpx(provider)
    return True


def _provider_for(service: str) -> TracerProvider:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    attributes: dict[str, str] = {"service.namespace": "spawnpoint"}
    if not os.environ.get("OTEL_SERVICE_NAME"):
        attributes["service.name"] = service
    provider = TracerProvider(resource=Resource.create(attributes))
    # The provider read its sampler from OTEL_TRACES_SAMPLER (default: parent-based, always on); the probes
    # are dropped in front of it. Set before any tracer is made: each tracer keeps the provider's sampler.
    provider.sampler = _without_probes(provider.sampler)
    return provider


def _without_probes(delegate: Sampler) -> Sampler:
    """``delegate``, except that a SERVER span for one of ``UNTRACED_PATHS`` is dropped (with whatever it
    would have contained: its children are not sampled either)."""
    from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
    from opentelemetry.trace import SpanKind

    class WithoutProbes(Sampler):
        def should_sample(
            self,
            parent_context: Context | None,
            trace_id: int,
            name: str,
            kind: SpanKind | None = None,
            attributes: Any = None,
            links: Any = None,
            trace_state: Any = None,
        ) -> SamplingResult:
            if kind is SpanKind.SERVER and attributes and attributes.get("url.path") in UNTRACED_PATHS:
                return SamplingResult(Decision.DROP)
            return delegate.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)

        def get_description(self) -> str:
            return f"WithoutProbes{{{delegate.get_description()}}}"

    return WithoutProbes()


def _activate(provider: TracerProvider) -> None:
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    global ENABLED, _tracer, _provider, _propagator
    _provider = provider
    _tracer = provider.get_tracer("spawnpoint_kit")
    _propagator = TraceContextTextMapPropagator()
    ENABLED = True


def _deactivate() -> None:
    global ENABLED, _tracer, _provider, _propagator
    ENABLED = False
    _tracer = _provider = _propagator = None


def _instrument_httpx(provider: TracerProvider) -> None:
    """Every httpx transport of the process (the instrumentor patches the transport classes, so clients made
    before and after are covered alike): a CLIENT span per request and ``traceparent`` on it."""
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    instrumentor = HTTPXClientInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument(tracer_provider=provider)


def shutdown() -> None:
    """Export what is still buffered (a stopping service must not lose its last spans)."""
    if _provider is not None:
        _provider.force_flush(timeout_millis=5000)


@contextmanager
def capture(exporter: SpanExporter, *, service: str = "test", instrument_httpx: bool = False) -> Iterator[None]:
    """Tests: tracing on for the block, each span handed to ``exporter`` as it ends; the process-wide
    provider is left as it was, so other tests see tracing off again afterwards."""
    if ENABLED:
        raise RuntimeError("tracing is already on in this process")
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    provider = _provider_for(service)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    _activate(provider)
    httpx_instrumentor = None
    if instrument_httpx:
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

        httpx_instrumentor = HTTPXClientInstrumentor()
        httpx_instrumentor.instrument(tracer_provider=provider)
    try:
        yield
    finally:
        if httpx_instrumentor is not None:
            httpx_instrumentor.uninstrument()
        _deactivate()
        provider.shutdown()


# -- only while ENABLED ----------------------------------------------------------------------------------


def _kind(kind: SpanKindName) -> Any:
    from opentelemetry.trace import SpanKind

    return SpanKind[kind.upper()]


def _carrier(headers: Mapping[str, Any]) -> dict[str, str]:
    """The trace headers of an untrusted mapping, as text (AMQP may hand long strings over as bytes)."""
    carrier: dict[str, str] = {}
    for name in TRACE_HEADERS:
        value = headers.get(name)
        if isinstance(value, bytes | bytearray):
            value = bytes(value).decode("ascii", "replace")
        if isinstance(value, str) and value:
            carrier[name] = value[:512]
    return carrier


def context_from(headers: Mapping[str, Any]) -> Context:
    """The context carried by ``headers`` (an empty one, i.e. a new trace, when they carry none or garbage)."""
    from opentelemetry.context import Context

    if _propagator is None:
        return Context()
    return _propagator.extract(_carrier(headers), context=Context())


def span_context_from(headers: Mapping[str, Any]) -> SpanContext | None:
    """The remote span ``headers`` name, or None."""
    from opentelemetry import trace

    found = trace.get_current_span(context_from(headers)).get_span_context()
    return found if found.is_valid else None


def current_headers() -> dict[str, str]:
    """The current span's context as W3C headers (``{}`` outside any span): what the outbox stores."""
    carrier: dict[str, str] = {}
    if _propagator is not None:
        _propagator.inject(carrier)
    return carrier


@contextmanager
def span(
    name: str,
    *,
    parent: Mapping[str, Any] | None = None,
    kind: SpanKindName = "internal",
    attributes: Mapping[str, Any] | None = None,
) -> Iterator[Span]:
    """A span around the block: a child of the current span, or of the context in ``parent`` when given
    (a new trace if that carries none). An exception leaving the block is recorded and marks it failed."""
    if _tracer is None:
        raise RuntimeError("tracing is off")
    context = context_from(parent) if parent is not None else None
    with _tracer.start_as_current_span(name, context=context, kind=_kind(kind), attributes=_clean(attributes)) as s:
        yield s


@contextmanager
def publishing(
    headers: MutableMapping[str, Any], *, exchange: str, routing_key: str, message_id: str
) -> Iterator[None]:
    """The relay's PRODUCER span for one outbox row, a child of the context staged with the row; that span's
    own context replaces the row's in ``headers`` (what goes on the wire)."""
    if _tracer is None or _propagator is None:
        raise RuntimeError("tracing is off")
    attributes = {
        "messaging.system": "rabbitmq",
        "messaging.operation.type": "send",
        "messaging.operation.name": "publish",
        "messaging.destination.name": exchange,
        "messaging.rabbitmq.destination.routing_key": routing_key,
        "messaging.message.id": message_id,
    }
    with _tracer.start_as_current_span(
        f"publish {exchange or routing_key}",
        context=context_from(headers),
        kind=_kind("producer"),
        attributes=attributes,
    ):
        for name in TRACE_HEADERS:
            headers.pop(name, None)
        _propagator.inject(headers)
        yield


@contextmanager
def consuming(
    headers: Mapping[str, Any],
    *,
    queue: str,
    exchange: str,
    routing_key: str,
    message_id: str | None,
    correlation_id: str | None,
    body_size: int,
) -> Iterator[Span]:
    """The CONSUMER span of one delivery (messaging conventions, operation ``process``), a child of the
    context the message carries. Named after the queue (the subscription) rather than the exchange: every
    event goes through one exchange, so the queue is what tells deliveries apart."""
    if _tracer is None:
        raise RuntimeError("tracing is off")
    attributes = _clean(
        {
            "messaging.system": "rabbitmq",
            "messaging.operation.type": "process",
            "messaging.operation.name": "process",
            "messaging.destination.name": exchange,
            "messaging.destination.subscription.name": queue,
            "messaging.rabbitmq.destination.routing_key": routing_key,
            "messaging.message.id": message_id,
            "messaging.message.conversation_id": correlation_id,
            "messaging.message.body.size": body_size,
        }
    )
    with _tracer.start_as_current_span(
        f"process {queue}", context=context_from(headers), kind=_kind("consumer"), attributes=attributes
    ) as s:
        yield s


def current_ids() -> tuple[str, str] | None:
    """The current span's trace id and span id in hex (as backends show them), or None outside a span."""
    from opentelemetry import trace

    found = trace.get_current_span().get_span_context()
    if not found.is_valid:
        return None
    return format(found.trace_id, "032x"), format(found.span_id, "016x")


def annotate(attributes: Mapping[str, Any]) -> None:
    """Set attributes on the current span (None values are skipped)."""
    from opentelemetry import trace

    current = trace.get_current_span()
    if current.is_recording():
        current.set_attributes(_clean(attributes))


def fail(description: str) -> None:
    """Mark the current span failed without an exception (a message dead-lettered, for one)."""
    from opentelemetry import trace
    from opentelemetry.trace import Status, StatusCode

    current = trace.get_current_span()
    if current.is_recording():
        current.set_status(Status(StatusCode.ERROR, description[:500]))


def link_current(headers: Mapping[str, Any], attributes: Mapping[str, Any] | None = None) -> bool:
    """Link the current span to the span named in ``headers`` (the Stripe webhook's request to the checkout
    it pays for: Stripe does not propagate ``traceparent``). True when a link was added."""
    from opentelemetry import trace

    target = span_context_from(headers)
    current = trace.get_current_span()
    if target is None or not current.is_recording():
        return False
    current.add_link(target, _clean(attributes))
    return True


def _clean(attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    """Attribute values OpenTelemetry accepts: None dropped, anything not a primitive turned into text."""
    if not attributes:
        return {}
    return {
        key: value if isinstance(value, str | bool | int | float) else str(value)
        for key, value in attributes.items()
        if value is not None
    }
