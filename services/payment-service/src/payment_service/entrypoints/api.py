"""payment-service HTTP API: opening a checkout, and Stripe's webhook."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

import stripe
from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from spawnpoint_kit.auth import CurrentPrincipal
from spawnpoint_kit.logs import get_logger

from ..adapters.order_client import OrderNotFound, OrderServiceUnavailable
from ..adapters.signature import InvalidSignature, verify
from ..service_layer.checkout import NotPayable, open_checkout
from ..service_layer.webhooks import MalformedEvent, record_event

log = get_logger(__name__)
router = APIRouter()


class CheckoutIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    order_id: uuid.UUID


class CheckoutOut(BaseModel):
    order_id: uuid.UUID
    session_id: str
    client_secret: str
    expires_at: datetime


class WebhookOut(BaseModel):
    received: bool
    outcome: str


@router.post(
    "/checkout-sessions",
    status_code=status.HTTP_201_CREATED,
    response_model=CheckoutOut,
    tags=["checkout"],
    summary="Open (or reopen) the embedded Checkout for one of the caller's orders",
    responses={
        200: {"description": "The order already has an open session: the same client_secret"},
        404: {"description": "No such order for this caller"},
        409: {"description": "The order is not waiting for payment"},
        503: {"description": "order-service or Stripe is unreachable; retry"},
    },
)
async def create_checkout_session(body: CheckoutIn, request: Request, principal: CurrentPrincipal) -> JSONResponse:
    state = request.app.state
    token = request.headers["authorization"].split(" ", 1)[1]
    try:
        order = await state.order_client.get_order(body.order_id, bearer_token=token)
    except OrderNotFound as exc:
        raise HTTPException(status_code=404, detail="order not found") from exc
    except OrderServiceUnavailable as exc:
        raise HTTPException(status_code=503, detail="order-service is unavailable; try again") from exc
    if order.snapshot.user_id != principal.user_id:
        raise HTTPException(status_code=404, detail="order not found")
    try:
        opened = await open_checkout(state.runtime.sessions, state.gateway, state.checkout_config, order)
    except NotPayable as exc:
        raise HTTPException(status_code=409, detail=f"the order is not waiting for payment ({exc.status})") from exc
    except stripe.StripeError as exc:
        log.warning("Stripe refused or failed to open a session", error=str(exc.user_message or exc))
        raise HTTPException(status_code=503, detail="the payment provider is unavailable; try again") from exc
    out = CheckoutOut(
        order_id=opened.order_id,
        session_id=opened.session_id,
        client_secret=opened.client_secret,
        expires_at=opened.expires_at,
    )
    return JSONResponse(status_code=200 if opened.reused else 201, content=out.model_dump(mode="json"))


@router.post(
    "/webhooks/stripe",
    response_model=WebhookOut,
    tags=["webhooks"],
    summary="Stripe webhook endpoint (signature verified on the raw body)",
    responses={400: {"description": "Missing or invalid signature, or a body that is not a Stripe event"}},
)
async def stripe_webhook(request: Request) -> WebhookOut:
    state = request.app.state
    payload = await request.body()
    try:
        verify(
            payload,
            request.headers.get("stripe-signature"),
            state.webhook_secrets,
            tolerance=state.settings.stripe_webhook_tolerance_seconds,
        )
    except (InvalidSignature, UnicodeDecodeError) as exc:
        raise HTTPException(status_code=400, detail=f"invalid signature: {exc}") from exc
    try:
        event: Any = json.loads(payload)
        if not isinstance(event, dict):
            raise MalformedEvent("the body is not a JSON object")
        outcome = await record_event(state.runtime.sessions, event)
    except (ValueError, MalformedEvent) as exc:
        raise HTTPException(status_code=400, detail=f"not a Stripe event: {exc}") from exc
    return WebhookOut(received=True, outcome=outcome)
