"""Stripe-shaped API errors.

Every failure the fake reports through `/v1` goes through :class:`StripeError`, so the status code and
the ``{"error": {...}}`` body are the ones the official SDK maps onto its exception classes (400/404 ->
``InvalidRequestError`` or ``IdempotencyError``, 401 -> ``AuthenticationError``, other -> ``APIError``).
Messages reproduce Stripe's wording where it is known (see the package README for which ones are
exact and which are close approximations).
"""

from __future__ import annotations

from typing import Any

_SUPPORT = "Please see https://stripe.com/docs or we can help at https://support.stripe.com/."


class StripeError(Exception):
    """An error answer of the fake Stripe API: HTTP status plus Stripe's error object."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.headers = headers or {}
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        """The JSON body Stripe sends: only the keys that apply, as the real API does."""
        error: dict[str, Any] = {}
        if self.code is not None:
            error["code"] = self.code
            error["doc_url"] = f"https://stripe.com/docs/error-codes/{self.code.replace('_', '-')}"
        error.update(self.extra)
        error["message"] = self.message
        if self.param is not None:
            error["param"] = self.param
        error["type"] = self.type
        return {"error": error}


def invalid_request(message: str, param: str | None = None, *, code: str | None = None) -> StripeError:
    """A 400 ``invalid_request_error`` (validation failure)."""
    return StripeError(400, message, param=param, code=code)


def missing_param(param: str) -> StripeError:
    """Stripe's answer when a required parameter is absent."""
    return StripeError(400, f"Missing required param: {param}.", param=param, code="parameter_missing")


def unknown_param(param: str) -> StripeError:
    """Stripe refuses parameters it does not know instead of ignoring them."""
    return StripeError(400, f"Received unknown parameter: {param}", param=param, code="parameter_unknown")


def invalid_integer(param: str, raw: object) -> StripeError:
    """A parameter that must be an integer got something else."""
    return StripeError(400, f"Invalid integer: {raw}", param=param)


def invalid_enum(param: str, raw: object, allowed: list[str]) -> StripeError:
    """A parameter outside its enumeration, phrased the way Stripe lists the allowed values."""
    choices = ", ".join(allowed[:-1]) + f", or {allowed[-1]}" if len(allowed) > 1 else allowed[0]
    return StripeError(400, f"Invalid {param}: must be one of {choices}", param=param)


def resource_missing(kind: str, object_id: str, param: str, *, status: int = 404) -> StripeError:
    """``No such <kind>: '<id>'`` with code ``resource_missing`` (404 for a path id, 400 for a param)."""
    return StripeError(status, f"No such {kind}: '{object_id}'", param=param, code="resource_missing")


def unrecognized_url(method: str, path: str) -> StripeError:
    """Stripe's answer for a path (or method) it does not serve."""
    return StripeError(404, f"Unrecognized request URL ({method}: {path}). {_SUPPORT}")


def api_key_missing() -> StripeError:
    """401 when no ``Authorization`` header (or an empty one) was sent."""
    return StripeError(
        401,
        "You did not provide an API key. You need to provide your API key in the Authorization header, "
        "using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See "
        "https://stripe.com/docs/api#authentication for details, or we can help at "
        "https://support.stripe.com/.",
    )


def api_key_invalid(key: str) -> StripeError:
    """401 for a key that is not a test-mode secret key (the fake only runs in test mode)."""
    masked = key[:8] + "*" * max(len(key) - 12, 0) + key[-4:] if len(key) > 12 else "*" * len(key)
    return StripeError(401, f"Invalid API Key provided: {masked}")


def idempotency_mismatch(key: str) -> StripeError:
    """A key reused with different parameters (exact Stripe message)."""
    return StripeError(
        400,
        "Keys for idempotent requests can only be used with the same parameters they were first used "
        f"with. Try using a key other than '{key}' if you meant to execute a different request.",
        type="idempotency_error",
    )


def idempotency_in_use() -> StripeError:
    """A second request with a key whose first request is still executing: retryable 409."""
    return StripeError(
        409,
        "There is currently another in-progress request using this Idempotent Key (probably from "
        "another process). Please try again later. If this is unexpected, please reach out to "
        "support@stripe.com.",
        type="idempotency_error",
        code="idempotency_key_in_use",
    )


def api_error(status: int = 500) -> StripeError:
    """A server-side failure (used by fault injection)."""
    return StripeError(
        status,
        "An unknown error occurred while processing your request. Please retry; if the problem "
        "persists, contact support@stripe.com.",
        type="api_error",
    )
