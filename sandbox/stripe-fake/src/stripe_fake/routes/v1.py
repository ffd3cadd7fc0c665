"""The Stripe API surface the payment flow uses, under ``/v1`` (billing routes: ``routes.billing``).

Each route only binds a path to a service method; auth, form decoding, idempotency and faults are the
pipeline's job. Anything else under ``/v1`` (or a known path with the wrong method) gets Stripe's
"Unrecognized request URL" 404.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from stripe_fake.api import ApiPipeline
from stripe_fake.errors import unrecognized_url
from stripe_fake.event_api import list_events, retrieve_event
from stripe_fake.fake import StripeFake
from stripe_fake.routes.billing import add_billing_routes

ALL_METHODS = ["GET", "POST", "DELETE", "PUT", "PATCH"]


def build_v1_router(fake: StripeFake) -> APIRouter:
    """Routes of the fake Stripe API bound to ``fake``."""
    router = APIRouter(prefix="/v1", tags=["Stripe API"])
    pipeline = ApiPipeline(fake)
    checkout = fake.checkout
    payments = fake.payments

    @router.post("/checkout/sessions", summary="Create a Checkout Session")
    async def create_session(request: Request) -> Response:
        return await pipeline.run(request, checkout.create)

    @router.get("/checkout/sessions", summary="List Checkout Sessions")
    async def list_sessions(request: Request) -> Response:
        return await pipeline.run(request, checkout.list_sessions)

    @router.get("/checkout/sessions/{session_id}", summary="Retrieve a Checkout Session")
    async def retrieve_session(request: Request, session_id: str) -> Response:
        return await pipeline.run(request, lambda ctx: checkout.retrieve(ctx, session_id))

    @router.get("/checkout/sessions/{session_id}/line_items", summary="List a session's line items")
    async def session_line_items(request: Request, session_id: str) -> Response:
        return await pipeline.run(request, lambda ctx: checkout.list_line_items(ctx, session_id))

    @router.post("/checkout/sessions/{session_id}/expire", summary="Expire a Checkout Session")
    async def expire_session(request: Request, session_id: str) -> Response:
        return await pipeline.run(request, lambda ctx: checkout.expire(ctx, session_id))

    @router.get("/payment_intents/{intent_id}", summary="Retrieve a PaymentIntent")
    async def retrieve_payment_intent(request: Request, intent_id: str) -> Response:
        return await pipeline.run(request, lambda ctx: payments.retrieve_intent(ctx, intent_id))

    @router.post("/refunds", summary="Create a refund")
    async def create_refund(request: Request) -> Response:
        return await pipeline.run(request, payments.create_refund)

    @router.get("/refunds", summary="List refunds")
    async def list_refunds(request: Request) -> Response:
        return await pipeline.run(request, payments.list_refunds)

    @router.get("/refunds/{refund_id}", summary="Retrieve a refund")
    async def retrieve_refund(request: Request, refund_id: str) -> Response:
        return await pipeline.run(request, lambda ctx: payments.retrieve_refund(ctx, refund_id))

    @router.get("/events", summary="List events")
    async def events(request: Request) -> Response:
        return await pipeline.run(request, lambda ctx: list_events(fake.events, ctx))

    @router.get("/events/{event_id}", summary="Retrieve an event")
    async def event(request: Request, event_id: str) -> Response:
        return await pipeline.run(request, lambda ctx: retrieve_event(fake.events, ctx, event_id))

    add_billing_routes(router, fake, pipeline)

    @router.api_route("/{rest:path}", methods=ALL_METHODS, include_in_schema=False)
    async def unrecognized(request: Request, rest: str) -> Response:
        method, path = request.method, request.url.path

        def answer(_ctx: object) -> dict[str, object]:
            raise unrecognized_url(method, path)

        return await pipeline.run(request, answer)

    return router
