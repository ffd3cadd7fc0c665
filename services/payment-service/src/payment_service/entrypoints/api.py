"""payment-service HTTP API: opening a checkout, the return page's status call, and Stripe's webhook.

Routes translate HTTP to the service layer and back; what they use comes from ``deps.py``.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime
from typing import Annotated, Any

import stripe
from fastapi import APIRouter, HTTPException, Path, Request, status
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict

from spawnpoint_kit.auth import BearerToken, CurrentPrincipal
from spawnpoint_kit.logs import get_logger

from ..adapters.order_client import OrderNotFound, OrderServiceUnavailable
from ..adapters.signature import InvalidSignature, verify
from ..deps import CheckoutDep, FulfilmentDep, StripeCallDep, UnitOfWorkDep, get_services
from ..domain.payment import PaymentStatus
from ..metrics import SIGNATURE_FAILURES, WEBHOOK_SECONDS, WEBHOOKS, type_label
from ..service_layer.checkout import CheckoutUnavailable, NotPayable
from ..service_layer.event_intake import MalformedEvent
from ..service_layer.return_page import SessionNotFound, session_status

log = get_logger(__name__)
router = APIRouter()

WEBHOOK_MAX_BODY_BYTES = 1024 * 1024
"""A Stripe event is at most a few hundred kilobytes; anything larger is refused (413) before it is read."""

SessionId = Annotated[str, Path(min_length=1, max_length=255, pattern=r"^[A-Za-z0-9_]+$")]


class CheckoutIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    order_id: uuid.UUID


class CheckoutOut(BaseModel):
    order_id: uuid.UUID
    session_id: str
    client_secret: str
    expires_at: datetime


class SessionStatusOut(BaseModel):
    session_id: str
    order_id: uuid.UUID
    session_status: str | None
    payment_status: str | None
    order_status: PaymentStatus
    paid: bool


class WebhookOut(BaseModel):
    received: bool
    outcome: str


def _unavailable(exc: Exception) -> HTTPException:
    log.warning("Stripe refused or failed", error=str(getattr(exc, "user_message", None) or exc))
    return HTTPException(status_code=503, detail="the payment provider is unavailable; try again")


@router.post(
    "/checkout-sessions",
    status_code=status.HTTP_201_CREATED,
    response_model=CheckoutOut,
    tags=["checkout"],
    summary="Open (or reopen) the embedded Checkout for one of the caller's orders",
    responses={
        200: {"description": "The order already has an open session: the same client_secret"},
        404: {"description": "No such order for this caller"},
        409: {"description": "The order is not waiting for payment (paid, processing, expired, ...)"},
        429: {"description": "This customer's budget of Stripe calls is spent for now (Retry-After)"},
        503: {"description": "order-service or Stripe is unreachable; retry"},
    },
)
async def create_checkout_session(
    body: CheckoutIn, principal: CurrentPrincipal, token: BearerToken, checkout: CheckoutDep, _: StripeCallDep
) -> JSONResponse:
    try:
        opened = await checkout.open_for(principal, body.order_id, bearer_token=token)
    except OrderNotFound as exc:
        raise HTTPException(status_code=404, detail="order not found") from exc
    except OrderServiceUnavailable as exc:
        raise HTTPException(status_code=503, detail="order-service is unavailable; try again") from exc
    except NotPayable as exc:
        raise HTTPException(status_code=409, detail=f"the order is not waiting for payment ({exc.status})") from exc
    except (stripe.StripeError, CheckoutUnavailable) as exc:
        raise _unavailable(exc) from exc
    out = CheckoutOut(
        order_id=opened.order_id,
        session_id=opened.session_id,
        client_secret=opened.client_secret,
        expires_at=opened.expires_at,
    )
    return JSONResponse(status_code=200 if opened.reused else 201, content=out.model_dump(mode="json"))


@router.get(
    "/checkout-sessions/{session_id}/status",
    response_model=SessionStatusOut,
    tags=["checkout"],
    summary="The return page's call: the session's state, fulfilling it if Stripe says it is paid",
    responses={
        404: {"description": "No such session for this caller"},
        429: {"description": "This customer's budget of Stripe calls is spent for now (Retry-After)"},
        503: {"description": "Stripe is unreachable; retry"},
    },
)
async def checkout_session_status(
    session_id: SessionId,
    principal: CurrentPrincipal,
    uow: UnitOfWorkDep,
    fulfilment: FulfilmentDep,
    _: StripeCallDep,
) -> SessionStatusOut:
    try:
        view = await session_status(uow, fulfilment, session_id, user_id=principal.user_id)
    except SessionNotFound as exc:
        raise HTTPException(status_code=404, detail="checkout session not found") from exc
    except stripe.StripeError as exc:
        raise _unavailable(exc) from exc
    return SessionStatusOut(
        session_id=view.session_id,
        order_id=view.order_id,
        session_status=view.session_status,
        payment_status=view.payment_status,
        order_status=view.order_status,
        paid=view.order_status == PaymentStatus.PAID,
    )


@router.post(
    "/webhooks/stripe",
    max_body_size=WEBHOOK_MAX_BODY_BYTES,
    response_model=WebhookOut,
    tags=["webhooks"],
    summary="Stripe webhook endpoint (signature verified on the raw body)",
    responses={400: {"description": "Missing or invalid signature, or a body that is not a Stripe event"}},
)
async def stripe_webhook(request: Request) -> Response:
    """Verify, store, answer. What a sale's burst waits on, so it is lean: the intake and the keys are taken
    from the services directly (``deps.get_services``) rather than through FastAPI's dependency solver, and
    the answer's body is serialised once (``_WEBHOOK_ANSWERS``) rather than validated and serialised through
    ``WebhookOut`` on every delivery (the documented body is the same). While it runs, the process's webhook
    worker gives way to the intake (``intake.pressure``)."""
    started = time.perf_counter()
    services = get_services(request)
    intake, keys = services.intake, services.webhook_keys
    intake.pressure.arrived()
    try:
        payload = await request.body()
        try:
            verify(payload, request.headers.get("stripe-signature"), keys.secrets, tolerance=keys.tolerance_seconds)
        except InvalidSignature as exc:
            SIGNATURE_FAILURES.labels(exc.reason).inc()
            WEBHOOKS.labels("unknown", "invalid_signature").inc()
            log.info("webhook refused: invalid signature", reason=exc.reason)
            raise HTTPException(status_code=400, detail=f"invalid signature: {exc}") from exc
        event_type: object = None
        try:
            event: Any = json.loads(payload)
            if not isinstance(event, dict):
                raise MalformedEvent("the body is not a JSON object")
            event_type = event.get("type")
            outcome = await intake.record(event, body=payload.decode("utf-8"))
        except ValueError as exc:  # json.JSONDecodeError and MalformedEvent are ValueErrors
            WEBHOOKS.labels(type_label(event_type), "malformed").inc()
            raise HTTPException(status_code=400, detail=f"not a Stripe event: {exc}") from exc
        WEBHOOKS.labels(type_label(event_type), outcome).inc()
        WEBHOOK_SECONDS.observe(time.perf_counter() - started)
        body = _WEBHOOK_ANSWERS.get(outcome) or WebhookOut(received=True, outcome=outcome).model_dump_json().encode()
        return Response(body, media_type="application/json")
    finally:
        intake.pressure.answered()


_WEBHOOK_ANSWERS = {
    outcome: WebhookOut(received=True, outcome=outcome).model_dump_json().encode()
    for outcome in ("stored", "duplicate", "ignored")
}
"""The webhook's three answers, serialised once (a fresh ``Response`` carries one per delivery: middleware
may add headers to a response's own list)."""
