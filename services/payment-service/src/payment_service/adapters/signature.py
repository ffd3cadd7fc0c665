"""Stripe webhook signature verification over the raw request bytes, with several secrets accepted.

The HMAC check is the official SDK's ``WebhookSignature.verify_header`` (HMAC-SHA256 keyed by the whole
``whsec_…`` secret over ``"{t}.{body}"``, any matching ``v1``, ``v0`` ignored), tried with each
configured secret so the endpoint secret can be rolled without downtime. The body is never parsed
before it is verified.

The timestamp tolerance is checked here rather than inside the SDK only so that the clock can be
injected (the reference's known-answer vector is signed at a fixed time); the rule is the SDK's: a
timestamp older than ``tolerance`` seconds is refused. A timestamp in the future is accepted, as the SDK
and Stripe do: producing one needs the secret, so refusing it would add no protection against replays.

Each refusal carries a short ``reason`` for metrics and logs: ``missing_header``, ``malformed_header``,
``no_v1``, ``mismatch``, ``stale`` or ``not_utf8``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import stripe


class InvalidSignature(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _timestamp_and_v1(header: str) -> tuple[int, list[str]]:
    """The header read exactly as the SDK reads it (``WebhookSignature._get_timestamp_and_signatures``): items
    split on ``,`` and each on ``=``, no stripping; the *first* ``t`` is the timestamp and every ``v1`` a
    signature. The SDK checks the HMAC against that first ``t``, so the tolerance must be checked against
    it too: ``t=<a month ago>,v1=<valid>,t=<now>`` is a month-old signature, whatever comes after it."""
    items = [item.split("=", 2) for item in header.split(",")]
    stamps = [item[1] if len(item) > 1 else "" for item in items if item[0] == "t"]
    if not stamps:
        raise InvalidSignature("malformed_header", "Unable to extract timestamp and signatures from header")
    try:
        timestamp = int(stamps[0])
    except ValueError as exc:
        raise InvalidSignature("malformed_header", "Unable to extract timestamp from header") from exc
    signatures = [item[1] for item in items if item[0] == "v1" and len(item) > 1]
    if not signatures:
        raise InvalidSignature("no_v1", "No signatures found with expected scheme v1")
    return timestamp, signatures


def verify(
    payload: bytes, header: str | None, secrets: Sequence[str], *, tolerance: int, now: float | None = None
) -> None:
    """Raise ``InvalidSignature`` unless ``header`` is a valid, recent signature of ``payload``."""
    if not header:
        raise InvalidSignature("missing_header", "No Stripe-Signature header value was provided")
    if not secrets:
        raise InvalidSignature("mismatch", "No webhook secret is configured")
    timestamp, _ = _timestamp_and_v1(header)
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidSignature("not_utf8", "The body is not UTF-8") from exc
    for secret in secrets:
        try:
            stripe.WebhookSignature.verify_header(text, header, secret, tolerance=None)
            break
        except stripe.SignatureVerificationError:
            continue
    else:
        raise InvalidSignature("mismatch", "No signatures found matching the expected signature for payload")
    current = time.time() if now is None else now
    if tolerance and timestamp < current - tolerance:
        raise InvalidSignature("stale", f"Timestamp outside the tolerance zone ({timestamp})")
