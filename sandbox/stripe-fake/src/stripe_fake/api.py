"""The request pipeline every ``/v1`` call goes through.

Order matters and mirrors Stripe: authenticate, decode the form, then the idempotency layer (replay,
mismatch or in-use), then injected faults that fire before processing, then the handler, then saving
the result under the key, then faults that fire after the commit. Handlers are synchronous functions
over in-memory state, so a request's effects are atomic on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from stripe_fake import ids
from stripe_fake.auth import authenticate
from stripe_fake.config import API_VERSION
from stripe_fake.context import ApiContext
from stripe_fake.errors import StripeError, api_error, idempotency_in_use, idempotency_mismatch, invalid_request
from stripe_fake.fake import StripeFake
from stripe_fake.faults import Fault
from stripe_fake.forms import decode_form
from stripe_fake.idempotency import MAX_KEY_LENGTH, InUse, Mismatch, Proceed, Replay, fingerprint
from stripe_fake.responses import REQUEST_ID_SCOPE_KEY, DroppedConnection, encode, error_response

logger = logging.getLogger("stripe_fake.api")

Handler = Callable[[ApiContext], dict[str, Any]]


class ApiPipeline:
    """Runs a handler with Stripe's transport semantics around it."""

    def __init__(self, fake: StripeFake) -> None:
        self._fake = fake

    async def run(self, request: Request, handler: Handler) -> Response:
        """Serve one API request."""
        fake = self._fake
        method = request.method.upper()
        path = request.url.path
        request_id = str(request.scope.get(REQUEST_ID_SCOPE_KEY) or ids.request_id())
        headers = {"Stripe-Version": request.headers.get("stripe-version") or API_VERSION}
        try:
            api_key = authenticate(request.headers.get("authorization"))
            params = decode_form(request.url.query)
            if method == "POST":
                params.update(decode_form(await request.body()))
        except StripeError as error:
            if error.status == 401:
                headers["WWW-Authenticate"] = 'Bearer realm="Stripe"'
            return error_response(error, headers)

        key = request.headers.get("idempotency-key") if method == "POST" else None
        token: Proceed | None = None
        if key is not None:
            headers["Idempotency-Key"] = key
            if len(key) > MAX_KEY_LENGTH:
                return error_response(
                    invalid_request(
                        f"Idempotency keys can be at most {MAX_KEY_LENGTH} characters long; yours has {len(key)}."
                    ),
                    headers,
                )
            outcome = fake.idempotency.begin(api_key, key, fingerprint(method, path, params), fake.clock.now())
            if isinstance(outcome, Replay):
                saved = outcome.saved
                replay_headers = {**headers, "Idempotent-Replayed": "true", "Original-Request": saved.request_id}
                return Response(saved.body, saved.status, replay_headers, media_type="application/json")
            if isinstance(outcome, Mismatch):
                return error_response(idempotency_mismatch(key), headers)
            if isinstance(outcome, InUse):
                return error_response(idempotency_in_use(), headers)
            token = outcome

        try:
            early = await self._fault(method, path, headers, after_commit=False)
        except BaseException:
            if token is not None:
                fake.idempotency.abandon(token)
            raise
        if early is not None:
            if token is not None:
                fake.idempotency.abandon(token)
            return early

        ctx = ApiContext(
            request_id=request_id,
            method=method,
            path=path,
            api_key=api_key,
            params=params,
            idempotency_key=key,
            now=fake.clock.now(),
        )
        try:
            body = handler(ctx)
            status = 200
        except StripeError as error:
            body, status = error.body(), error.status
            headers.update(error.headers)
        except Exception:
            logger.exception("handler for %s %s failed", method, path)
            if token is not None:
                fake.idempotency.abandon(token)
            return error_response(api_error(), headers)
        payload = encode(body)
        if token is not None:
            fake.idempotency.finish(token, status, payload, request_id, ctx.now)

        late = await self._fault(method, path, headers, after_commit=True)
        if late is not None:
            return late
        return Response(payload, status, headers, media_type="application/json")

    async def _fault(self, method: str, path: str, headers: dict[str, str], *, after_commit: bool) -> Response | None:
        """Apply the first matching fault of this phase: delay, then drop or error (or nothing)."""
        fault = self._fake.faults.take(method, path, after_commit=after_commit)
        if fault is None:
            return None
        if fault.delay_seconds > 0:
            await asyncio.sleep(fault.delay_seconds)
        if fault.drop_connection:
            return DroppedConnection()
        if fault.status is not None:
            return error_response(_fault_error(fault), headers)
        return None


def _fault_error(fault: Fault) -> StripeError:
    status = fault.status or 500
    if status == 429:
        error = StripeError(
            429,
            "Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits.",
            code="rate_limit",
        )
    elif status >= 500:
        error = api_error(status)
    elif status == 409:
        error = StripeError(
            409,
            "This object cannot be accessed right now because another API request or Stripe process is "
            "currently accessing it. If you see this error intermittently, retry the request.",
            code="lock_timeout",
        )
    else:
        error = StripeError(status, f"Injected fault (HTTP {status}).")
    if fault.should_retry is not None:
        error.headers["Stripe-Should-Retry"] = "true" if fault.should_retry else "false"
    return error
