"""``/api/application/nodes``: listing, the deployable-node query and node allocations.

``/nodes/deployable`` runs the same viability query as automatic deployment (public nodes
only): a plain list without ``?page``, a paginated one with it, and 400
``NoViableNodeException`` when nothing fits.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from panel_fake import envelopes, errors, pagination, php
from panel_fake.auth import READ, WRITE
from panel_fake.deploy import viable_nodes
from panel_fake.pipeline import ApiContext
from panel_fake.router import Route
from panel_fake.routes.common import (
    apply_filters,
    apply_sort,
    not_implemented_handler,
    paginate,
    validate_or_raise,
)
from panel_fake.store import Allocation
from panel_fake.transformers import allocation_item, node_item
from panel_fake.validation import RuleSpec

PREFIX = "/api/application/nodes"
NODE_FILTERS: dict[str, Any] = {
    "uuid": lambda n: n.uuid,
    "name": lambda n: n.name,
    "fqdn": lambda n: n.fqdn,
    "daemon_token_id": lambda n: None,
}
NODE_SORTS: dict[str, Any] = {
    "id": lambda n: n.id,
    "uuid": lambda n: n.uuid,
    "memory": lambda n: n.memory,
    "disk": lambda n: n.disk,
}


async def list_nodes(ctx: ApiContext) -> Response:
    nodes = sorted(ctx.runtime.state.nodes.values(), key=lambda n: n.id)
    nodes = apply_filters(ctx, nodes, NODE_FILTERS)
    nodes = apply_sort(ctx, nodes, NODE_SORTS)
    includes = ctx.includes()
    view = ctx.view
    return ctx.json(paginate(ctx, nodes, lambda n: node_item(view, n, includes)))


async def view_node(ctx: ApiContext) -> Response:
    assert ctx.node is not None
    return ctx.json(node_item(ctx.view, ctx.node, ctx.includes()))


def _list_of(value: Any) -> list[Any]:
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        return list(value.values())
    return []


async def deployable_nodes(ctx: ApiContext) -> Response:
    data = ctx.input
    rules: list[tuple[str, RuleSpec]] = [
        ("page", "integer"),
        ("memory", "required|integer|min:0"),
        ("disk", "required|integer|min:0"),
    ]
    if ctx.pelican:
        rules += [("cpu", "sometimes|integer|min:0"), ("tags", "array"), ("tags.*", "string")]
    rules += [("location_ids", "array"), ("location_ids.*", "integer")]
    validate_or_raise(data, rules)
    memory, disk = php.to_int(data.get("memory")), php.to_int(data.get("disk"))
    if ctx.pelican:
        tags = [php.to_string(tag) for tag in _list_of(data.get("tags")) or _list_of(data.get("location_ids"))]
        nodes = viable_nodes(
            ctx.runtime.state, "pelican", memory=memory, disk=disk, cpu=php.to_int(data.get("cpu")), tags=tags
        )
    else:
        locations = [php.to_int(item) for item in _list_of(data.get("location_ids"))]
        nodes = viable_nodes(ctx.runtime.state, "pterodactyl", memory=memory, disk=disk, locations=locations)
    paged = data.get("page") is not None
    if paged:
        window = nodes[pagination.window(ctx.query.get("per_page"), data.get("page"), len(nodes)).slice(len(nodes))]
        if not window:
            raise errors.display("NoViableNodeException", errors.NO_VIABLE_NODES)
    elif not nodes:
        raise errors.display("NoViableNodeException", errors.NO_VIABLE_NODES)
    includes = ctx.includes()
    view = ctx.view
    if paged:
        return ctx.json(paginate(ctx, nodes, lambda n: node_item(view, n, includes)))
    return ctx.json(envelopes.collection([node_item(view, node, includes) for node in nodes]))


def _server_id_filter(rows: list[Allocation], raw: Any) -> list[Allocation]:
    """``filter[server_id]``: a number selects that server's ports; anything else the free ones."""
    text = php.to_string(raw) if raw is not None and not isinstance(raw, bool | dict | list) else ""
    if text == "" or not text.isdigit():
        return [a for a in rows if a.server_id is None]
    return [a for a in rows if a.server_id == int(text)]


async def list_allocations(ctx: ApiContext) -> Response:
    assert ctx.node is not None
    state = ctx.runtime.state
    rows = [state.allocations[aid] for aid in state.node_allocations.get(ctx.node.id, [])]
    filters = ctx.query.get("filter")
    server_filter: Any = None
    has_server_filter = isinstance(filters, dict) and "server_id" in filters
    if has_server_filter and isinstance(filters, dict):
        server_filter = filters.pop("server_id")
    rows = apply_filters(
        ctx,
        rows,
        {"ip": lambda a: a.ip, "port": lambda a: a.port, "ip_alias": lambda a: a.alias, "server_id": lambda a: None},
        exact=("ip", "port"),
    )
    if has_server_filter:
        rows = _server_id_filter(rows, server_filter)
    includes = ctx.includes()
    view = ctx.view
    return ctx.json(paginate(ctx, rows, lambda a: allocation_item(view, a, includes)))


ROUTES: list[Route] = [
    Route("GET", PREFIX, list_nodes, resource="nodes", permission=READ),
    Route("GET", PREFIX + "/deployable", deployable_nodes, resource="nodes", permission=READ),
    Route("GET", PREFIX + "/{node}", view_node, resource="nodes", permission=READ),
    Route("GET", PREFIX + "/{node}/configuration", not_implemented_handler, resource="nodes", permission=READ),
    Route("POST", PREFIX, not_implemented_handler, resource="nodes", permission=WRITE),
    Route("PATCH", PREFIX + "/{node}", not_implemented_handler, resource="nodes", permission=WRITE),
    Route("DELETE", PREFIX + "/{node}", not_implemented_handler, resource="nodes", permission=WRITE),
    Route("GET", PREFIX + "/{node}/allocations", list_allocations, resource="allocations", permission=READ),
    Route("POST", PREFIX + "/{node}/allocations", not_implemented_handler, resource="allocations", permission=WRITE),
    Route(
        "DELETE",
        PREFIX + "/{node}/allocations/{allocation}",
        not_implemented_handler,
        resource="allocations",
        permission=WRITE,
    ),
]
