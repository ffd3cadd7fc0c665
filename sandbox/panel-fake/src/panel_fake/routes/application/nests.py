"""Nests and eggs (Pterodactyl) and top-level eggs (Pelican).

Pterodactyl: ``/nests`` is paginated, ``/nests/{nest}/eggs`` is a plain list, and the egg
binding is scoped, so an egg of another nest is a 404. Pelican has no nests: eggs live at
``/eggs`` (a plain list) and variable ``rules`` are arrays instead of pipe strings.
"""

from __future__ import annotations

from starlette.responses import Response

from panel_fake import envelopes
from panel_fake.auth import READ
from panel_fake.pipeline import ApiContext
from panel_fake.router import Route
from panel_fake.routes.common import paginate
from panel_fake.transformers import egg_item, nest_item


async def list_nests(ctx: ApiContext) -> Response:
    nests = sorted(ctx.runtime.state.nests.values(), key=lambda n: n.id)
    includes = ctx.includes()
    view = ctx.view
    return ctx.json(paginate(ctx, nests, lambda n: nest_item(view, n, includes)))


async def view_nest(ctx: ApiContext) -> Response:
    assert ctx.nest is not None
    return ctx.json(nest_item(ctx.view, ctx.nest, ctx.includes()))


async def list_nest_eggs(ctx: ApiContext) -> Response:
    assert ctx.nest is not None
    nest_id = ctx.nest.id
    eggs = sorted((e for e in ctx.runtime.state.eggs.values() if e.nest_id == nest_id), key=lambda e: e.id)
    includes = ctx.includes()
    return ctx.json(envelopes.collection([egg_item(ctx.view, egg, includes) for egg in eggs]))


async def view_egg(ctx: ApiContext) -> Response:
    assert ctx.egg is not None
    return ctx.json(egg_item(ctx.view, ctx.egg, ctx.includes()))


async def list_eggs(ctx: ApiContext) -> Response:
    eggs = sorted(ctx.runtime.state.eggs.values(), key=lambda e: e.id)
    includes = ctx.includes()
    return ctx.json(envelopes.collection([egg_item(ctx.view, egg, includes) for egg in eggs]))


ROUTES: list[Route] = [
    Route("GET", "/api/application/nests", list_nests, resource="nests", permission=READ, flavors=("pterodactyl",)),
    Route(
        "GET", "/api/application/nests/{nest}", view_nest, resource="nests", permission=READ, flavors=("pterodactyl",)
    ),
    Route(
        "GET",
        "/api/application/nests/{nest}/eggs",
        list_nest_eggs,
        resource="eggs",
        permission=READ,
        flavors=("pterodactyl",),
    ),
    Route(
        "GET",
        "/api/application/nests/{nest}/eggs/{egg}",
        view_egg,
        resource="eggs",
        permission=READ,
        flavors=("pterodactyl",),
    ),
    Route("GET", "/api/application/eggs", list_eggs, resource="eggs", permission=READ, flavors=("pelican",)),
    Route("GET", "/api/application/eggs/{egg}", view_egg, resource="eggs", permission=READ, flavors=("pelican",)),
]
