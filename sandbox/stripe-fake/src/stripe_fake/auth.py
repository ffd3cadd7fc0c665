"""API-key authentication: test-mode secret keys only.

The SDK sends ``Authorization: Bearer <key>``; Stripe also accepts the key as the Basic-auth user name.
Any key starting ``sk_test_`` is accepted (the fake has one account); live or publishable keys get
Stripe's 401.
"""

from __future__ import annotations

import base64
import binascii

from stripe_fake.errors import api_key_invalid, api_key_missing

TEST_KEY_PREFIX = "sk_test_"


def authenticate(authorization: str | None) -> str:
    """The API key from the ``Authorization`` header, or a 401 :class:`StripeError`."""
    if not authorization or not authorization.strip():
        raise api_key_missing()
    scheme, _, credentials = authorization.strip().partition(" ")
    credentials = credentials.strip()
    if scheme.lower() == "bearer":
        key = credentials
    elif scheme.lower() == "basic":
        try:
            key = base64.b64decode(credentials, validate=True).decode("utf-8").partition(":")[0]
        except (binascii.Error, UnicodeDecodeError):
            raise api_key_invalid(credentials) from None
    else:
        raise api_key_invalid(authorization.strip())
    if not key:
        raise api_key_missing()
    if not key.startswith(TEST_KEY_PREFIX) or len(key) == len(TEST_KEY_PREFIX):
        raise api_key_invalid(key)
    return key
