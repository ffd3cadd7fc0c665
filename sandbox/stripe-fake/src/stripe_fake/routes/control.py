"""The test-control API under ``/_fake`` (no auth): drive and inspect the fake from tests.

It plays the parts Stripe's API does not expose: the customer paying on the Checkout page, time passing,
webhook endpoint registration (with secret rotation), delivery control (pause, flush in order or
reversed, redeliver), injected API faults, inspection of events, delivery attempts, sessions and refunds,
and a full reset. Errors use Stripe's ``{"error": {...}}`` shape.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field, model_validator
from starlette.responses import Response

from stripe_fake.checkout import session_matches
from stripe_fake.errors import StripeError, invalid_request
from stripe_fake.fake import StripeFake
from stripe_fake.responses import error_response, json_response
from stripe_fake.routes.billing_control import add_billing_controls


class EndpointIn(BaseModel):
    """A webhook receiver. ``secrets`` (newest first) simulates a secret roll: one ``v1`` per secret."""

    url: str = Field(pattern=r"^https?://")
    secret: str | None = None
    secrets: list[str] | None = Field(default=None, min_length=1)
    events: list[str] | None = None


class EndpointUpdate(BaseModel):
    """Changes to an endpoint; omitted fields stay as they are."""

    url: str | None = Field(default=None, pattern=r"^https?://")
    secret: str | None = None
    secrets: list[str] | None = Field(default=None, min_length=1)
    events: list[str] | None = None


class PayIn(BaseModel):
    """What the customer does on the Checkout page (``payment_method``: subscription mode's card)."""

    outcome: Literal["paid", "delayed", "declined"] = "paid"
    email: str | None = None
    name: str | None = None
    payment_method: str | None = None


class DropIn(BaseModel):
    """Lose deliveries: the next ``count`` (``null``: all) events matching ``event_type`` (``*`` ok)."""

    event_type: str = Field(min_length=1)
    count: int | None = Field(default=1, ge=1)
    endpoint_id: str | None = None


class AsyncIn(BaseModel):
    """Final result of a delayed payment method."""

    result: Literal["succeeded", "failed"]


class AdvanceIn(BaseModel):
    """Clock step; ``sweep`` expires due sessions at once (else on next access or periodic sweep)."""

    seconds: float = Field(ge=0)
    sweep: bool = True


class RedeliverIn(BaseModel):
    """Optionally restrict a redelivery to one endpoint."""

    endpoint_id: str | None = None


class FaultIn(BaseModel):
    """An injected failure for matching ``/v1`` requests."""

    path_prefix: str = "/v1"
    method: str | None = None
    status: int | None = Field(default=None, ge=400, le=599)
    drop_connection: bool = False
    delay_seconds: float = Field(default=0.0, ge=0, le=120)
    after_commit: bool = False
    times: int | None = Field(default=1, ge=1)
    should_retry: bool | None = None

    @model_validator(mode="after")
    def _does_something(self) -> FaultIn:
        if self.status is None and not self.drop_connection and self.delay_seconds == 0:
            raise ValueError("a fault needs status, drop_connection or delay_seconds")
        return self


def _not_found(kind: str, object_id: str) -> Response:
    return error_response(StripeError(404, f"No such {kind}: '{object_id}'", code="resource_missing"))


def _list(data: list[Any], **extra: Any) -> Response:
    return json_response({"object": "list", "data": data, **extra})


def build_control_router(fake: StripeFake) -> APIRouter:
    """Control routes bound to ``fake``."""
    router = APIRouter(prefix="/_fake", tags=["Test control"])

    @router.get("/health", summary="Liveness")
    async def health() -> Response:
        return json_response({"status": "ok"})

    # --- webhook endpoints -----------------------------------------------------------------------

    @router.post("/webhook_endpoints", summary="Register a webhook endpoint")
    async def add_endpoint(body: EndpointIn) -> Response:
        secrets = body.secrets or [body.secret or fake.config.webhook_secret]
        endpoint = fake.endpoints.add(body.url, secrets, _events(body.events), fake.clock.now_int())
        return json_response(endpoint.to_dict())

    @router.get("/webhook_endpoints", summary="List webhook endpoints")
    async def list_endpoints() -> Response:
        return _list([e.to_dict() for e in fake.endpoints.all()])

    @router.post("/webhook_endpoints/{endpoint_id}", summary="Update an endpoint (roll its secret)")
    async def update_endpoint(endpoint_id: str, body: EndpointUpdate) -> Response:
        secrets = body.secrets or ([body.secret] if body.secret else None)
        events = _events(body.events) if body.events is not None else None
        endpoint = fake.endpoints.update(
            endpoint_id,
            url=body.url,
            secrets=secrets,
            events=events,
            all_events=body.events is not None and events is None,
        )
        if endpoint is None:
            return _not_found("webhook_endpoint", endpoint_id)
        return json_response(endpoint.to_dict())

    @router.delete("/webhook_endpoints/{endpoint_id}", summary="Delete an endpoint")
    async def delete_endpoint(endpoint_id: str) -> Response:
        if not fake.endpoints.remove(endpoint_id):
            return _not_found("webhook_endpoint", endpoint_id)
        return json_response({"id": endpoint_id, "object": "webhook_endpoint", "deleted": True})

    # --- the customer ----------------------------------------------------------------------------

    @router.post("/sessions/{session_id}/pay", summary="Customer pays (paid | delayed | declined)")
    async def pay(session_id: str, body: PayIn) -> Response:
        return _pay(session_id, body)

    @router.post("/checkout/{session_id}/complete", summary="The browser completes a session (alias of pay)")
    async def complete(session_id: str, body: PayIn | None = None) -> Response:
        return _pay(session_id, body or PayIn())

    def _pay(session_id: str, body: PayIn) -> Response:
        try:
            session = fake.checkout.pay(session_id, body.outcome, body.email, body.name, body.payment_method)
        except StripeError as error:
            return error_response(error)
        expand = ["payment_intent"] if session.mode == "payment" else ["subscription", "invoice"]
        return json_response(fake.checkout.render(session, expand))

    @router.post("/sessions/{session_id}/async", summary="Delayed payment succeeds or fails")
    async def settle(session_id: str, body: AsyncIn) -> Response:
        try:
            session = fake.checkout.settle_async(session_id, body.result)
        except StripeError as error:
            return error_response(error)
        return json_response(fake.checkout.render(session, ["payment_intent"]))

    @router.get("/sessions", summary="List sessions (filter: order_id, status)")
    async def list_sessions(request: Request) -> Response:
        fake.checkout.expire_due()
        filters = dict(request.query_params)
        sessions = [s for s in fake.store.sessions.values() if session_matches(s, filters)]
        return _list([fake.checkout.render(s, ["line_items", "payment_intent"]) for s in sessions])

    @router.get("/sessions/{session_id}", summary="One session with line items and PaymentIntent")
    async def get_session(session_id: str) -> Response:
        try:
            session = fake.checkout.get(session_id)
        except StripeError as error:
            return error_response(error)
        obj = fake.checkout.render(session, ["line_items", "payment_intent"])
        obj["payment_intent_data"] = {"metadata": dict(session.payment_intent_metadata)}
        return json_response(obj)

    @router.get("/refunds", summary="List refunds (filter: payment_intent, order_id)")
    async def list_refunds(payment_intent: str | None = None, order_id: str | None = None) -> Response:
        refunds = []
        for refund in fake.store.refunds.values():
            if payment_intent and refund.payment_intent != payment_intent:
                continue
            if order_id:
                intent = fake.store.payment_intents.get(refund.payment_intent)
                session = fake.store.sessions.get(fake.store.session_by_payment_intent.get(refund.payment_intent, ""))
                owners = {
                    intent.metadata.get("serverOrderId") if intent else None,
                    session.order_id() if session else None,
                    refund.metadata.get("serverOrderId"),
                }
                if order_id not in owners:
                    continue
            refunds.append(refund.to_dict())
        return _list(refunds)

    @router.get("/payment_intents", summary="List PaymentIntents")
    async def list_intents() -> Response:
        return _list([pi.to_dict() for pi in fake.store.payment_intents.values()])

    # --- time --------------------------------------------------------------------------------------

    @router.get("/clock", summary="Current fake time")
    async def clock() -> Response:
        return json_response({"now": fake.clock.now_int(), "offset_seconds": fake.clock.offset})

    @router.post("/clock/advance", summary="Move the fake clock forward")
    async def advance(body: AdvanceIn) -> Response:
        expired, steps = fake.advance_clock(body.seconds, sweep=body.sweep)
        return json_response(
            {
                "now": fake.clock.now_int(),
                "offset_seconds": fake.clock.offset,
                "expired_sessions": expired,
                "billing_steps": steps,
            }
        )

    # --- events and deliveries -------------------------------------------------------------------

    @router.get("/events", summary="Events, oldest first (filter: type, session_id, order_id)")
    async def events(
        type: str | None = None,
        session_id: str | None = None,
        order_id: str | None = None,
        object_id: str | None = None,
    ) -> Response:
        wanted_object = session_id or object_id
        data = [
            e.to_dict()
            for e in fake.events
            if (type is None or e.type == type)
            and (wanted_object is None or e.object_id == wanted_object)
            and (order_id is None or e.order_id == order_id)
        ]
        return _list(data)

    @router.get("/events/{event_id}", summary="One event")
    async def event(event_id: str) -> Response:
        found = fake.events.get(event_id)
        if found is None:
            return _not_found("event", event_id)
        return json_response(found.to_dict())

    @router.post("/events/{event_id}/redeliver", summary="Send an event again (duplicate delivery)")
    async def redeliver(event_id: str, body: RedeliverIn | None = None) -> Response:
        found = fake.events.get(event_id)
        if found is None:
            return _not_found("event", event_id)
        endpoints = fake.endpoints.matching(found.type)
        if body is not None and body.endpoint_id is not None:
            endpoints = [e for e in endpoints if e.id == body.endpoint_id]
            if not endpoints:
                return error_response(
                    invalid_request(f"Endpoint {body.endpoint_id} does not exist or does not want {found.type}.")
                )
        found.pending_endpoints.update(e.id for e in endpoints)
        scheduled = fake.worker.submit(found, endpoints, apply_drops=False)
        return json_response({"event_id": event_id, "deliveries_scheduled": scheduled})

    @router.get("/deliveries", summary="Delivery attempts, oldest first")
    async def deliveries(
        event_id: str | None = None, endpoint_url: str | None = None, event_type: str | None = None
    ) -> Response:
        data = [
            a.to_dict()
            for a in fake.worker.attempts
            if (event_id is None or a.event_id == event_id)
            and (endpoint_url is None or a.endpoint_url == endpoint_url)
            and (event_type is None or a.event_type == event_type)
        ]
        return _list(
            data,
            paused=fake.worker.paused,
            queued=fake.worker.queued,
            in_flight=fake.worker.in_flight,
            dropped=list(fake.worker.drops.dropped),
        )

    @router.post("/deliveries/drop", summary="Lose the next deliveries of an event type (never retried)")
    async def add_drop(body: DropIn) -> Response:
        rule = fake.worker.drops.add(body.event_type, count=body.count, endpoint_id=body.endpoint_id)
        return json_response(rule.to_dict())

    @router.get("/deliveries/drop", summary="Active drop rules")
    async def list_drops() -> Response:
        return _list([r.to_dict() for r in fake.worker.drops.active()], dropped=list(fake.worker.drops.dropped))

    @router.delete("/deliveries/drop", summary="Remove every drop rule")
    async def clear_drops() -> Response:
        fake.worker.drops.clear()
        return json_response({"deleted": True})

    @router.post("/deliveries/pause", summary="Queue deliveries instead of sending them")
    async def pause() -> Response:
        fake.worker.pause()
        return json_response({"paused": True, "queued": fake.worker.queued})

    @router.post("/deliveries/resume", summary="Send the queue in creation order and stop queueing")
    async def resume() -> Response:
        sent = await fake.worker.resume()
        return json_response({"paused": False, "delivered": sent})

    @router.post("/deliveries/flush", summary="Send the queue now (order=creation|reverse|concurrent|shuffle)")
    async def flush(
        order: Literal["creation", "reverse", "concurrent", "shuffle"] = Query("creation"),
        seed: int | None = None,
    ) -> Response:
        sent = await fake.worker.flush(order, seed)
        return json_response({"paused": fake.worker.paused, "delivered": sent, "order": order})

    add_billing_controls(router, fake)

    # --- faults and reset ------------------------------------------------------------------------

    @router.post("/faults", summary="Make matching /v1 requests fail")
    async def add_fault(body: FaultIn) -> Response:
        fault = fake.faults.add(
            path_prefix=body.path_prefix,
            method=body.method,
            status=body.status,
            drop_connection=body.drop_connection,
            delay_seconds=body.delay_seconds,
            after_commit=body.after_commit,
            times=body.times,
            should_retry=body.should_retry,
        )
        return json_response(fault.to_dict())

    @router.get("/faults", summary="Active faults")
    async def list_faults() -> Response:
        return _list([f.to_dict() for f in fake.faults.active()])

    @router.delete("/faults", summary="Remove every fault")
    async def clear_faults() -> Response:
        fake.faults.clear()
        return json_response({"deleted": True})

    @router.delete("/data", summary="Reset everything (keeps the endpoint configured at start)")
    async def reset() -> Response:
        await fake.reset()
        return json_response({"deleted": True, "webhook_endpoints": [e.to_dict() for e in fake.endpoints.all()]})

    return router


def _events(events: list[str] | None) -> list[str] | None:
    """``None``, ``[]`` or ``["*"]`` all mean every event type."""
    if not events:
        return None
    cleaned = [e.strip() for e in events if e.strip()]
    return None if not cleaned or cleaned == ["*"] else cleaned
