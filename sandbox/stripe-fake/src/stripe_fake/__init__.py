"""Stripe stand-in: a fake of the Stripe API (payments and Billing) for Spawnpoint's offline development and tests.

``create_app(config)`` builds the FastAPI app; ``python -m stripe_fake`` serves it with uvicorn.
"""

from stripe_fake.app import StripeFakeApp, create_app
from stripe_fake.config import API_VERSION, FakeConfig
from stripe_fake.signing import compute_signature, signature_header

__all__ = ["API_VERSION", "FakeConfig", "StripeFakeApp", "compute_signature", "create_app", "signature_header"]
