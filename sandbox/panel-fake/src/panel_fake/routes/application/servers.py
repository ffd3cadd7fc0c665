"""``/api/application/servers``: the route table, listing, lookups and ``PATCH details``.

Creation lives in ``server_create``, ``PATCH build`` in ``server_build``, suspension,
reinstall and delete in ``server_lifecycle``.

The listing is what a drift reconciler pages through: every server, including those without
an ``external_id``, in id order unless ``sort`` says otherwise, paged exactly as Laravel does
(``pagination``).
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from panel_fake import errors, php
from panel_fake.auth import READ, WRITE
from panel_fake.pipeline import ApiContext
from panel_fake.router import Route
from panel_fake.routes.application.server_build import update_build
from panel_fake.routes.application.server_create import create_server, db_rules
from panel_fake.routes.application.server_lifecycle import (
    delete_server,
    reinstall_server,
    suspend_server,
    unsuspend_server,
)
from panel_fake.routes.common import apply_filters, apply_sort, not_implemented_handler, paginate, validate_or_raise
from panel_fake.store import Server
from panel_fake.transformers import server_item
from panel_fake.validation import RuleSpec

PREFIX = "/api/application/servers"

SERVER_FILTERS: dict[str, Any] = {
    "uuid": lambda s: s.uuid,
    "uuidShort": lambda s: s.identifier,  # Pelican spells it uuid_short
    "name": lambda s: s.name,
    "description": lambda s: s.description,
    "image": lambda s: s.image,
    "external_id": lambda s: s.external_id,
}
PELICAN_SERVER_FILTERS: dict[str, Any] = {
    "uuid": lambda s: s.uuid,
    "uuid_short": lambda s: s.identifier,
    "name": lambda s: s.name,
    "description": lambda s: s.description,
    "image": lambda s: s.image,
    "external_id": lambda s: s.external_id,
}
SERVER_SORTS: dict[str, Any] = {"id": lambda s: s.id, "uuid": lambda s: s.uuid}


def _server(ctx: ApiContext) -> Server:
    assert ctx.server is not None
    return ctx.server


async def list_servers(ctx: ApiContext) -> Response:
    """``ServerController::index``; ``GetServersRequest`` validates ``search`` (which nothing reads)."""
    validate_or_raise(ctx.input, [("search", "string|max:100")])
    servers = sorted(ctx.runtime.state.servers.values(), key=lambda s: s.id)
    servers = apply_filters(ctx, servers, PELICAN_SERVER_FILTERS if ctx.pelican else SERVER_FILTERS)
    servers = apply_sort(ctx, servers, SERVER_SORTS)
    includes = ctx.includes()
    view = ctx.view
    return ctx.json(paginate(ctx, servers, lambda s: server_item(view, s, includes)))


async def view_server(ctx: ApiContext) -> Response:
    return ctx.json(server_item(ctx.view, _server(ctx), ctx.includes()))


async def view_external(ctx: ApiContext) -> Response:
    external_id = ctx.params["external_id"]
    ctx.external_id = external_id
    server = ctx.runtime.state.find_server_by_external(external_id)
    if server is None:
        raise errors.model_not_found()
    return ctx.json(server_item(ctx.view, server, ctx.includes()))


async def update_details(ctx: ApiContext) -> Response:
    """``PATCH /servers/{id}/details``: note an omitted ``external_id`` clears it."""
    server = _server(ctx)
    state = ctx.runtime.state
    db = db_rules(state, ignore_server=server.id)
    limit = "between:1,255" if ctx.pelican else "between:1,191"
    name_max = "max:255" if ctx.pelican else "max:191"
    rules: list[tuple[str, RuleSpec]] = [
        ("external_id", ["sometimes", "nullable", "string", limit, db["external_id"]]),
        ("name", ["required", "string", "min:1", name_max]),
        ("user", ["required", "integer", db["user"]]),
        ("description", ["nullable", "string"]),
    ]
    validate_or_raise(ctx.input, rules)
    external_id = ctx.input.get("external_id")
    state.set_server_external_id(server, external_id if isinstance(external_id, str) else None)
    server.name = php.to_string(ctx.input.get("name"))
    server.owner_id = php.db_int(ctx.input.get("user")) or server.owner_id
    description = ctx.input.get("description")
    server.description = php.to_string(description) if description is not None else ""
    server.touch()
    ctx.external_id = server.external_id
    return ctx.json(server_item(ctx.view, server, ctx.includes()))


async def list_databases(ctx: ApiContext) -> Response:
    return ctx.json({"object": "list", "data": []})


ROUTES: list[Route] = [
    Route("GET", PREFIX, list_servers, resource="servers", permission=READ),
    Route("GET", PREFIX + "/{server}", view_server, resource="servers", permission=READ),
    Route("GET", PREFIX + "/external/{external_id}", view_external, resource="servers", permission=READ),
    Route("PATCH", PREFIX + "/{server}/details", update_details, resource="servers", permission=WRITE),
    Route("PATCH", PREFIX + "/{server}/build", update_build, resource="servers", permission=WRITE),
    Route("PATCH", PREFIX + "/{server}/startup", not_implemented_handler, resource="servers", permission=WRITE),
    Route("POST", PREFIX, create_server, resource="servers", permission=WRITE),
    Route("POST", PREFIX + "/{server}/suspend", suspend_server, resource="servers", permission=WRITE),
    Route("POST", PREFIX + "/{server}/unsuspend", unsuspend_server, resource="servers", permission=WRITE),
    Route("POST", PREFIX + "/{server}/reinstall", reinstall_server, resource="servers", permission=WRITE),
    Route("DELETE", PREFIX + "/{server}", delete_server, resource="servers", permission=WRITE),
    Route("DELETE", PREFIX + "/{server}/{force}", delete_server, resource="servers", permission=WRITE),
    Route("GET", PREFIX + "/{server}/databases", list_databases, resource="server_databases", permission=READ),
    Route(
        "GET",
        PREFIX + "/{server}/databases/{database}",
        not_implemented_handler,
        resource="server_databases",
        permission=READ,
    ),
    Route(
        "POST", PREFIX + "/{server}/databases", not_implemented_handler, resource="server_databases", permission=WRITE
    ),
    Route(
        "POST",
        PREFIX + "/{server}/databases/{database}/reset-password",
        not_implemented_handler,
        resource="server_databases",
        permission=WRITE,
    ),
    Route(
        "DELETE",
        PREFIX + "/{server}/databases/{database}",
        not_implemented_handler,
        resource="server_databases",
        permission=WRITE,
    ),
]
