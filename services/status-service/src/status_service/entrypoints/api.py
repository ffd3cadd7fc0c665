"""status-service HTTP API: an order's status for its customer (poll or stream), its timeline, and the
full event trail for operators. Everything is served from the read model and the stored events; no
request ever calls another service or the panel.

Customers see only their own orders: anything else, including an order that does not exist or has not
reached this service yet, is 404, so the answer never tells whether someone else's order exists.
Operator tokens (``roles: ["operator"]``) may read every order; the trail requires one (a customer
token gets 403).
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sse_starlette import EventSourceResponse
from starlette.background import BackgroundTask

from spawnpoint_kit.auth import CurrentPrincipal, OperatorPrincipal, Principal

from ..deps import QueriesDep, SettingsDep, StreamSlotsDep
from ..domain.ordering import place
from ..domain.timeline import customer_timeline, operator_summary
from ..service_layer.queries import StatusQueries
from ..service_layer.snapshot import Snapshot
from ..service_layer.stream_slots import StreamsFull
from .polling import STATUS_PATH, UNAVAILABLE_ERRORS, poll_answer, unavailable_answer
from .streams import heartbeat, status_events

router = APIRouter()

NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "Server not found: no such order for this caller (or not known here yet)"}
}
UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {"description": "The database is unreachable; try again after Retry-After seconds"}
}


class RentalOut(BaseModel):
    phase: str = Field(
        description="As the customer sees it: awaiting_payment, active, past_due, suspended (the rental lapsed, "
        "or the panel shows the server suspended), cancelling or ended"
    )
    kind: str = Field(description="subscription or fixed_term")
    plan_id: str
    period_id: str
    paid_through: datetime | None = Field(description="The end of the period paid for")
    renews_at: datetime | None = Field(description="When the next payment is taken (an active subscription)")
    ends_at: datetime | None = Field(description="When a cancelled rental stops running")
    next_payment_attempt: datetime | None = Field(description="While past due: when the card is tried again")
    grace_until: datetime | None = Field(description="While past due: the server keeps running at least until then")
    terminate_at: datetime | None = Field(description="Suspended or ended: when the server and its files are deleted")
    server_state: str | None = Field(
        description="running, suspended or terminated as the panel last confirmed it; null until it confirmed "
        "an installed server"
    )
    message: str = Field(description="What to tell the customer about the rental, in their words")


class StatusOut(BaseModel):
    order_id: uuid.UUID
    status: str = Field(description="PENDING, PAID, CREATED or FAILED (what frontends switch on)")
    phase: str = Field(
        description="The finer state: awaiting_payment, payment_processing, paid, provisioning, "
        "installing, ready, failed, payment_failed, expired or refunded"
    )
    message: str = Field(description="What to tell the customer, in their words")
    server_id: str | None = Field(description="The panel's server identifier once the server exists")
    connect_path: str | None = Field(description="/gameserver/{server_id} once the server is ready")
    updated_at: datetime = Field(description="When the order entered its current phase")
    version: int = Field(description="Grows by one with every visible change; the event stream's event id")
    poll_after_seconds: int = Field(description="Suggested wait before the next poll (also the Retry-After header)")
    rental: RentalOut | None = Field(description="The server's rental; null until payment-service reported one")


async def _visible_or_404(queries: StatusQueries, order_id: uuid.UUID, principal: Principal) -> Snapshot:
    try:
        snapshot = await queries.visible(order_id, principal)
    except UNAVAILABLE_ERRORS as exc:
        raise _unavailable() from exc
    if snapshot is None:
        raise HTTPException(status_code=404, detail="order not found")
    return snapshot


def _unavailable() -> HTTPException:
    code, headers, _ = unavailable_answer()
    return HTTPException(
        status_code=code,
        detail="the order status is temporarily unavailable; try again shortly",
        headers={k.decode(): v.decode() for k, v in headers if k == b"retry-after"},
    )


@router.get(
    STATUS_PATH,
    response_model=StatusOut,
    tags=["status"],
    summary="How far along the order's server is (poll; served from the read model only)",
    description="Send the last `ETag` in `If-None-Match` to get 304 with no body when nothing changed. "
    "`Retry-After` (and `poll_after_seconds`) suggests when to poll again.",
    responses={
        200: {"headers": {"ETag": {"schema": {"type": "string"}}, "Retry-After": {"schema": {"type": "integer"}}}},
        304: {"description": "Unchanged since the ETag in If-None-Match (no body)"},
        **NOT_FOUND,
        **UNAVAILABLE,
    },
)
async def order_status(
    order_id: uuid.UUID,
    queries: QueriesDep,
    principal: CurrentPrincipal,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    # Well-formed polls are answered by ``PollingFastPath`` before they reach this route; this route
    # documents the endpoint and answers everything else with the same functions.
    try:
        snapshot = await queries.visible(order_id, principal)
    except UNAVAILABLE_ERRORS:
        code, headers, body = unavailable_answer()
    else:
        code, headers, body = poll_answer(snapshot, if_none_match)
    return Response(content=body, status_code=code, headers={k.decode(): v.decode() for k, v in headers})


@router.get(
    "/orders/{order_id}/events",
    response_class=EventSourceResponse,
    tags=["status"],
    summary="The order's status as Server-Sent Events: now, then every change",
    description="Frames are `event: status` with the same JSON as the poll and `id:` = its `version`. "
    "Reconnect with `Last-Event-ID` to receive exactly the changes you missed. Comments are heartbeats.",
    responses={200: {"content": {"text/event-stream": {}}}, **NOT_FOUND, **UNAVAILABLE},
)
async def order_events(
    order_id: uuid.UUID,
    queries: QueriesDep,
    settings: SettingsDep,
    principal: CurrentPrincipal,
    slots: StreamSlotsDep,
    last_event_id: Annotated[str | None, Header(description="The id of the last frame received")] = None,
) -> EventSourceResponse:
    await _visible_or_404(queries, order_id, principal)
    try:
        release = slots.take(principal.user_id)
    except StreamsFull as full:
        raise HTTPException(status_code=full.status, detail=full.detail, headers={"Retry-After": "5"}) from full
    return EventSourceResponse(
        status_events(
            queries,
            order_id,
            last_event_id,
            retry_ms=settings.stream_retry_ms,
            ends_at=principal.expires_at,
            release=release,
        ),
        background=BackgroundTask(release),
        ping=settings.stream_heartbeat_seconds,
        ping_message_factory=heartbeat,
        send_timeout=settings.stream_send_timeout_seconds,
        sep="\n",
    )


class OwnedOrderOut(StatusOut):
    placed_at: datetime = Field(description="When the order was placed")
    game_id: str | None = Field(description="The catalog's game (null until the order's details arrived)")
    game_name: str | None
    plan_id: str | None
    plan_name: str | None
    server_name: str | None = Field(description="The name the customer gave the server")


class OrderListOut(BaseModel):
    orders: list[OwnedOrderOut] = Field(description="Newest first")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page")


def _cursor_of(placed_at: datetime, order_id: uuid.UUID) -> str:
    raw = json.dumps([placed_at.isoformat(), str(order_id)], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _parse_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        placed, order = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        moment, order_id = datetime.fromisoformat(placed), uuid.UUID(order)
        if moment.tzinfo is None:
            raise ValueError("a cursor's time carries its offset")
        return moment, order_id
    except (ValueError, TypeError, AttributeError, binascii.Error) as exc:
        raise HTTPException(
            status_code=422,
            detail=[{"field": "cursor", "message": "not a cursor this endpoint gave out; start without one"}],
        ) from exc


@router.get(
    "/orders",
    response_model=OrderListOut,
    tags=["status"],
    summary="The caller's own orders with their live status and rental (my servers), newest first",
    description="Only the orders whose owner is the token's subject (operators too see only their own). "
    "Paginated by `cursor`: follow `next_cursor` until it is null.",
    responses={422: {"description": "A malformed cursor or limit"}, **UNAVAILABLE},
)
async def my_orders(
    queries: QueriesDep,
    principal: CurrentPrincipal,
    limit: Annotated[int, Query(ge=1, le=100, description="Orders per page")] = 20,
    cursor: Annotated[str | None, Query(max_length=200, description="`next_cursor` of the previous page")] = None,
) -> OrderListOut:
    before = _parse_cursor(cursor) if cursor else None
    try:
        owned = await queries.owned(principal, limit=limit + 1, before=before)
    except UNAVAILABLE_ERRORS as exc:
        raise _unavailable() from exc
    page = owned[:limit]
    last = page[-1] if len(owned) > limit else None
    return OrderListOut(
        orders=[
            OwnedOrderOut.model_validate(
                {
                    **o.snapshot.public(),
                    "placed_at": o.placed_at,
                    "game_id": o.game_id,
                    "game_name": o.game_name,
                    "plan_id": o.plan_id,
                    "plan_name": o.plan_name,
                    "server_name": o.server_name,
                }
            )
            for o in page
        ],
        next_cursor=_cursor_of(last.placed_at, last.snapshot.order_id) if last is not None else None,
    )


class TimelineEntryOut(BaseModel):
    at: datetime = Field(description="When it happened")
    code: str = Field(
        description="Stable code to switch on: order_placed, payment_pending, payment_received, "
        "payment_failed, payment_expired, refunded, server_created, server_ready, server_error, "
        "retrying, retried_by_support; rental_<cause> (rental_activated, rental_renewed, "
        "rental_payment_failed, rental_payment_action_required, rental_recovered, "
        "rental_cancellation_scheduled, rental_cancellation_undone, rental_lapsed, rental_refunded, "
        "rental_dispute_opened, rental_dispute_won, rental_dispute_lost, rental_plan_changed, "
        "rental_termination_warning, rental_ended); server_suspended, server_unsuspended, server_resized, "
        "server_terminated, server_action_failed"
    )
    title: str
    detail: str | None = None


class TimelineOut(BaseModel):
    order_id: uuid.UUID
    status: str
    phase: str
    entries: list[TimelineEntryOut] = Field(description="Oldest first")


@router.get(
    "/orders/{order_id}/timeline",
    response_model=TimelineOut,
    tags=["status"],
    summary="What happened to the order and when, in the customer's words",
    responses={**NOT_FOUND, **UNAVAILABLE},
)
async def order_timeline(order_id: uuid.UUID, queries: QueriesDep, principal: CurrentPrincipal) -> TimelineOut:
    snapshot = await _visible_or_404(queries, order_id, principal)
    try:
        stored = await queries.events(order_id)
    except UNAVAILABLE_ERRORS as exc:
        raise _unavailable() from exc
    entries = customer_timeline(s.event for s in stored)
    return TimelineOut(
        order_id=order_id,
        status=snapshot.status,
        phase=snapshot.phase,
        entries=[TimelineEntryOut(at=e.at, code=e.code, title=e.title, detail=e.detail) for e in entries],
    )


class TrailEventOut(BaseModel):
    position: int = Field(description="1-based place in the canonical (causal, then time) order")
    arrival: int = Field(description="1-based place in the order this service received the events")
    event_id: uuid.UUID
    event_type: str
    event_version: int
    occurred_at: datetime = Field(description="As the producer's clock recorded it")
    effective_at: datetime = Field(description="occurred_at, corrected to be no earlier than its causes")
    received_at: datetime
    producer: str
    correlation_id: str
    causation_id: uuid.UUID | None
    caused_by_position: int | None = Field(description="position of the causing event, when it is in the trail")
    deliveries: int = Field(description="How many times it was delivered (more than 1: redelivered or duplicated)")
    summary: str
    payload: dict[str, Any]


class TrailChangeOut(BaseModel):
    version: int
    status: str
    phase: str
    message: str
    server_id: str | None
    updated_at: datetime
    changed_at: datetime | None
    rental: RentalOut | None = None


class TrailCountsOut(BaseModel):
    events: int
    duplicate_deliveries: int
    retries: int
    replays: int
    failures: int
    refunds: int


class TrailOut(BaseModel):
    order_id: uuid.UUID
    status: StatusOut | None
    user_id: str | None
    correlation_ids: list[str]
    counts: TrailCountsOut
    events: list[TrailEventOut]
    changes: list[TrailChangeOut] = Field(description="Every version the customer saw, oldest first")


@router.get(
    "/operator/orders/{order_id}/trail",
    response_model=TrailOut,
    tags=["operators"],
    summary="The order's full event trail: ids, causation and correlation, retries, replays (operators only)",
    responses={
        401: {"description": "Missing or invalid token"},
        403: {"description": "Not an operator token"},
        404: {"description": "No event of this order reached status-service"},
        **UNAVAILABLE,
    },
)
async def order_trail(order_id: uuid.UUID, queries: QueriesDep, operator: OperatorPrincipal) -> TrailOut:
    try:
        stored = await queries.events(order_id)
        current = await queries.cache.get(order_id)
        changes = await queries.changes(order_id)
    except UNAVAILABLE_ERRORS as exc:
        raise _unavailable() from exc
    if not stored and current is None:
        raise HTTPException(status_code=404, detail="order not found")
    return _trail(order_id, stored, current, changes)


def _trail(order_id: uuid.UUID, stored: list[Any], current: Snapshot | None, changes: list[Snapshot]) -> TrailOut:
    arrival = {s.event.event_id: i for i, s in enumerate(sorted(stored, key=lambda s: s.seq), start=1)}
    by_id = {s.event.event_id: s for s in stored}
    placed = place(s.event for s in stored)
    position = {p.event.event_id: i for i, p in enumerate(placed, start=1)}
    events = []
    for p in placed:
        e, s = p.event, by_id[p.event.event_id]
        events.append(
            TrailEventOut(
                position=position[e.event_id],
                arrival=arrival[e.event_id],
                event_id=e.event_id,
                event_type=e.event_type,
                event_version=e.event_version,
                occurred_at=e.occurred_at,
                effective_at=p.at,
                received_at=s.received_at,
                producer=e.producer,
                correlation_id=e.correlation_id,
                causation_id=e.causation_id,
                caused_by_position=position.get(e.causation_id) if e.causation_id else None,
                deliveries=s.deliveries,
                summary=operator_summary(e),
                payload=e.model_dump(mode="json").get("payload", {}),
            )
        )
    types = [e.event_type for e in events]
    return TrailOut(
        order_id=order_id,
        status=StatusOut.model_validate(current.public()) if current is not None else None,
        user_id=current.user_id if current is not None else None,
        correlation_ids=sorted({e.correlation_id for e in events}),
        counts=TrailCountsOut(
            events=len(events),
            duplicate_deliveries=sum(max(0, e.deliveries - 1) for e in events),
            retries=types.count("ProvisioningRetryScheduled"),
            replays=types.count("ProvisioningReplayed"),
            failures=types.count("ProvisionFailed"),
            refunds=types.count("OrderRefunded"),
        ),
        events=events,
        changes=[
            TrailChangeOut(
                version=c.version,
                status=c.status,
                phase=c.phase,
                message=c.message,
                server_id=c.server_id,
                updated_at=c.updated_at,
                changed_at=c.changed_at,
                rental=RentalOut.model_validate(c.rental) if c.rental is not None else None,
            )
            for c in changes
        ],
    )
