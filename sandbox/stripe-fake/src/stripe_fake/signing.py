"""Webhook signatures, computed exactly as Stripe does.

``Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>...][,v0=<hex>]`` where each ``v1`` is
HMAC-SHA256 keyed by one whole active endpoint secret (``whsec_`` prefix included) over
``f"{t}.{payload}"``. Test-mode deliveries also carry a meaningless ``v0`` that receivers must ignore;
including it catches verifiers that accept any scheme.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence


def compute_signature(payload: bytes | str, secret: str, timestamp: int) -> str:
    """Hex HMAC-SHA256 of ``"<timestamp>.<payload>"`` keyed by the full secret string."""
    body = payload if isinstance(payload, bytes) else payload.encode("utf-8")
    message = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def signature_header(payload: bytes | str, secrets_: Sequence[str], timestamp: int, *, include_v0: bool = True) -> str:
    """The full ``Stripe-Signature`` value: one ``v1`` per active secret, then a fake ``v0``."""
    parts = [f"t={timestamp}"]
    parts.extend(f"v1={compute_signature(payload, secret, timestamp)}" for secret in secrets_)
    if include_v0:
        parts.append(f"v0={secrets.token_hex(32)}")
    return ",".join(parts)
