"""Embedded Checkout in the browser: the Stripe.js stand-in at ``/v3/`` and the form its iframe shows.

A shop's page loads ``/v3/`` instead of Stripe's script and calls the same API (``Stripe(pk)``,
``createEmbeddedCheckoutPage`` or the older ``initEmbeddedCheckout``, ``mount``, ``unmount``, ``destroy``).
The iframe (``/embedded/checkout``) shows the session's line items and total and offers test payments;
each one completes the session through the stand-in's own payment logic (``CheckoutService.pay`` and
``settle_async``), so the webhooks, the session's state and everything the API answers are what the
``/_fake`` controls would have produced. The client secret is the iframe's only credential, as it is for
Stripe's: it is sent in request bodies, never in a URL a log would keep.

Test payment methods:

- ``card``: paid at once. ``card_declined``: declined, the session stays open, the form shows the decline.
- ``card_3ds``: answers ``next_action: three_d_secure`` first; confirming again with ``authenticated``
  true pays, false fails like Stripe's ``payment_intent_authentication_failure`` (the session stays open).
- ``sepa_debit_succeeds`` / ``sepa_debit_fails``: a delayed method. The session completes unpaid at once
  and settles ``embedded_settle_seconds`` later (0: only when ``/_fake/sessions/{id}/async`` says so).
  Subscription-mode sessions are paid by card only, as in the rest of the stand-in.

On completion the answer carries the ``return_url`` with ``{CHECKOUT_SESSION_ID}`` filled in; the script
in the parent page sends the top window there, as ``redirect_on_completion=always`` (the default) does.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field
from starlette.responses import FileResponse, Response

from stripe_fake.checkout import DECLINE_ERROR
from stripe_fake.errors import StripeError
from stripe_fake.fake import StripeFake
from stripe_fake.models import CheckoutSession, LineItem
from stripe_fake.responses import error_response, json_response

ASSETS = Path(__file__).parent / "embedded_assets"
logger = logging.getLogger("stripe_fake.embedded")

AUTHENTICATION_FAILURE: dict[str, Any] = {
    "code": "payment_intent_authentication_failure",
    "message": "We are unable to authenticate your payment method. Please choose a different payment method and "
    "try again.",
    "type": "card_error",
}
SUBSCRIPTION_CARDS = {"card": "pm_card_visa", "card_declined": "pm_card_chargeDeclined", "card_3ds": "pm_card_visa"}

Method = Literal["card", "card_declined", "card_3ds", "sepa_debit_succeeds", "sepa_debit_fails"]


class SessionIn(BaseModel):
    client_secret: str = Field(min_length=1, max_length=300)


class ConfirmIn(BaseModel):
    client_secret: str = Field(min_length=1, max_length=300)
    method: Method
    email: str | None = Field(default=None, max_length=254)
    authenticated: bool | None = None


def _asset(name: str, media_type: str) -> FileResponse:
    return FileResponse(ASSETS / name, media_type=media_type, headers={"Cache-Control": "no-cache"})


def build_embedded_router(fake: StripeFake) -> APIRouter:
    """The script, the iframe page and the two calls the iframe makes, bound to ``fake``."""
    router = APIRouter(tags=["Embedded Checkout (browser)"])

    @router.get("/v3/", summary="The Stripe.js stand-in (embedded Checkout)")
    @router.get("/v3", include_in_schema=False)
    async def stripe_js() -> Response:
        return _asset("stripe-v3.js", "application/javascript; charset=utf-8")

    @router.get("/embedded/checkout", summary="The embedded Checkout form (the iframe's page)")
    async def checkout_page() -> Response:
        return _asset("checkout.html", "text/html; charset=utf-8")

    @router.get("/embedded/checkout.js", include_in_schema=False)
    async def checkout_script() -> Response:
        return _asset("checkout.js", "application/javascript; charset=utf-8")

    @router.get("/embedded/checkout.css", include_in_schema=False)
    async def checkout_style() -> Response:
        return _asset("checkout.css", "text/css; charset=utf-8")

    @router.post("/embedded/session", summary="What the form shows: line items, total, state")
    async def session_view(body: SessionIn) -> Response:
        try:
            session = _by_secret(fake, body.client_secret)
        except StripeError as error:
            return error_response(error)
        return json_response(_view(session))

    @router.post("/embedded/confirm", summary="The customer pays with a test payment method")
    async def confirm(body: ConfirmIn) -> Response:
        try:
            session = _by_secret(fake, body.client_secret)
            return _confirm(fake, session, body)
        except StripeError as error:
            return error_response(error)

    return router


def _by_secret(fake: StripeFake, client_secret: str) -> CheckoutSession:
    session_id = client_secret.split("_secret_", 1)[0]
    session = fake.store.sessions.get(session_id)
    if (
        session is None
        or session.client_secret is None
        or not hmac.compare_digest(session.client_secret, client_secret)
    ):
        raise StripeError(404, "No such Checkout Session for this client secret.", code="resource_missing")
    return fake.checkout.get(session.id)  # expires it first when it is due


def _recurring(item: LineItem) -> dict[str, Any] | None:
    """The item's price's ``recurring`` (how often it bills), as the form words it: null for a one-time price."""
    price = item.price_obj
    if price is None or price.recurring is None:
        return None
    return {"interval": price.recurring.interval, "interval_count": price.recurring.interval_count}


def _view(session: CheckoutSession) -> dict[str, Any]:
    """What the form shows. A recurring item carries its interval, so the form says "€15.00 per month" and,
    after a trial or when today's total differs, "then €15.00 per month", as Stripe's Checkout does."""
    return {
        "id": session.id,
        "mode": session.mode,
        "status": session.status,
        "payment_status": session.payment_status,
        "currency": session.currency,
        "amount_total": session.amount_total,
        "customer_email": session.customer_email,
        "line_items": [
            {
                "description": item.description,
                "quantity": item.quantity,
                "amount": item.amount,
                "recurring": _recurring(item),
            }
            for item in session.line_items
        ],
        "trial_period_days": session.trial_period_days,
        "trial_end": session.trial_end,
        "livemode": False,
    }


def _completed(session: CheckoutSession) -> Response:
    redirect = session.return_url.replace("{CHECKOUT_SESSION_ID}", session.id) if session.return_url else None
    return json_response(
        {
            "status": session.status,
            "payment_status": session.payment_status,
            "redirect_url": redirect,
            "redirect_on_completion": session.redirect_on_completion or "always",
        }
    )


def _card_error(error: dict[str, Any]) -> Response:
    return json_response({"error": dict(error)}, status=402)


def _confirm(fake: StripeFake, session: CheckoutSession, body: ConfirmIn) -> Response:
    email = body.email or None
    subscription = session.mode == "subscription"
    method = body.method
    if method == "card_3ds" and body.authenticated is None:
        if session.status != "open":
            fake.checkout.pay(session.id, "paid", email, None)  # raises Stripe's "cannot be paid" error
        return json_response({"next_action": "three_d_secure"})
    if method == "card_declined" or (method == "card_3ds" and body.authenticated is False):
        fake.checkout.pay(
            session.id, "declined", email, None, SUBSCRIPTION_CARDS["card_declined"] if subscription else None
        )
        error = DECLINE_ERROR if method == "card_declined" else AUTHENTICATION_FAILURE
        intent = fake.store.payment_intents.get(session.payment_intent_id or "")
        if intent is not None:
            intent.last_payment_error = dict(error)
        return _card_error(error)
    if method in ("card", "card_3ds"):
        paid = fake.checkout.pay(session.id, "paid", email, None, SUBSCRIPTION_CARDS[method] if subscription else None)
        if paid.status != "complete":
            return _card_error(DECLINE_ERROR)
        return _completed(paid)
    result = "succeeded" if method == "sepa_debit_succeeds" else "failed"
    delayed = fake.checkout.pay(session.id, "delayed", email, None)
    seconds = fake.config.embedded_settle_seconds
    if seconds > 0:
        fake.spawn(_settle_later(fake, delayed.id, result, seconds))
    return _completed(delayed)


async def _settle_later(fake: StripeFake, session_id: str, result: str, seconds: float) -> None:
    await asyncio.sleep(seconds)
    with contextlib.suppress(StripeError):  # already settled through the control API
        fake.checkout.settle_async(session_id, result)
        logger.info("delayed payment of %s %s", session_id, result)
