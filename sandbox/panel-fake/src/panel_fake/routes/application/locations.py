"""``/api/application/locations`` (Pterodactyl only; Pelican has no locations)."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from panel_fake.auth import READ, WRITE
from panel_fake.config import Flavor
from panel_fake.pipeline import ApiContext
from panel_fake.router import Route
from panel_fake.routes.common import apply_filters, apply_sort, not_implemented_handler, paginate
from panel_fake.transformers import location_item

PREFIX = "/api/application/locations"
LOCATION_FILTERS: dict[str, Any] = {"short": lambda loc: loc.short, "long": lambda loc: loc.long}
LOCATION_SORTS: dict[str, Any] = {"id": lambda loc: loc.id}


async def list_locations(ctx: ApiContext) -> Response:
    locations = sorted(ctx.runtime.state.locations.values(), key=lambda loc: loc.id)
    locations = apply_filters(ctx, locations, LOCATION_FILTERS)
    locations = apply_sort(ctx, locations, LOCATION_SORTS)
    includes = ctx.includes()
    view = ctx.view
    return ctx.json(paginate(ctx, locations, lambda loc: location_item(view, loc, includes)))


async def view_location(ctx: ApiContext) -> Response:
    assert ctx.location is not None
    return ctx.json(location_item(ctx.view, ctx.location, ctx.includes()))


_P: tuple[Flavor, ...] = ("pterodactyl",)

ROUTES: list[Route] = [
    Route("GET", PREFIX, list_locations, resource="locations", permission=READ, flavors=_P),
    Route("GET", PREFIX + "/{location}", view_location, resource="locations", permission=READ, flavors=_P),
    Route("POST", PREFIX, not_implemented_handler, resource="locations", permission=WRITE, flavors=_P),
    Route("PATCH", PREFIX + "/{location}", not_implemented_handler, resource="locations", permission=WRITE, flavors=_P),
    Route(
        "DELETE", PREFIX + "/{location}", not_implemented_handler, resource="locations", permission=WRITE, flavors=_P
    ),
]
