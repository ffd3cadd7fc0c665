"""HTTP routes: the panel's application and client APIs, and the ``/_fake`` control API."""

from __future__ import annotations

from panel_fake.router import Route
from panel_fake.routes import client
from panel_fake.routes.application import ROUTES as APPLICATION_ROUTES


def panel_routes() -> list[Route]:
    """Every panel route, in the order the real route files register them."""
    return [*APPLICATION_ROUTES, *client.ROUTES]
