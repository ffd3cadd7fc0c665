"""Stripe webhook signature verification over the raw request bytes, with several secrets accepted.

Each configured secret is tried with the SDK's ``WebhookSignature.verify_header`` (HMAC-SHA256 of
``"{t}.{body}"``, any matching ``v1``, the timestamp within the tolerance). Several secrets allow rolling
the endpoint secret without downtime. The body is never parsed before it is verified.
"""

from __future__ import annotations

import stripe


class InvalidSignature(Exception):
    pass


def verify(payload: bytes, header: str | None, secrets: list[str], *, tolerance: int) -> None:
    """Raise ``InvalidSignature`` unless ``header`` is a valid signature of ``payload`` by one secret."""
    if not header:
        raise InvalidSignature("missing Stripe-Signature header")
    if not secrets:
        raise InvalidSignature("no webhook secret configured")
    text = payload.decode("utf-8", errors="strict") if payload else ""
    last: Exception | None = None
    for secret in secrets:
        try:
            stripe.WebhookSignature.verify_header(text, header, secret, tolerance)
            return
        except stripe.SignatureVerificationError as exc:
            last = exc
    raise InvalidSignature(str(last.user_message if isinstance(last, stripe.StripeError) else last))
