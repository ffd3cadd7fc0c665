"""Stripe-looking object ids.

Ids carry the same prefixes as Stripe's (``cs_test_``, ``pi_``, ``evt_``...) and similar lengths, so
code that logs, stores or pattern-matches them sees realistic values. They are random, never sequential,
so nothing can depend on their order. A Mersenne Twister seeded from the OS is used instead of
``secrets``: ids are generated several times per request under benchmark load, and a fake's client
secrets protect nothing.
"""

from __future__ import annotations

import random
import string

_ALPHABET = string.ascii_letters + string.digits
_random = random.Random()  # seeded from os.urandom


def random_token(length: int) -> str:
    """Alphanumeric random string."""
    return "".join(_random.choices(_ALPHABET, k=length))


def new_id(prefix: str, length: int = 24) -> str:
    """``<prefix><random>``, for example ``pi_3Qx...``."""
    return prefix + random_token(length)


def checkout_session_id() -> str:
    """Checkout Session ids are long in test mode: ``cs_test_a1...`` (about 66 characters)."""
    return "cs_test_a1" + random_token(56)


def client_secret(session_id: str) -> str:
    """Embedded Checkout's client secret: the session id plus a secret suffix."""
    return f"{session_id}_secret_{random_token(24)}"


def request_id() -> str:
    """``Request-Id`` header value."""
    return new_id("req_", 14)
