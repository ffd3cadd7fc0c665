"""The client API a poller might use: ``GET /api/client/servers/{id}`` and ``/resources``.

``AuthenticateServerAccess``: only the owner (or a root admin) sees the server, others get a
404. Viewing is allowed in any state; ``/resources`` answers 409
``ServerStateConflictException`` while the server is installing, failed, suspended,
restoring or on a node in maintenance.
"""

from __future__ import annotations

from starlette.responses import Response

from panel_fake import errors
from panel_fake.pipeline import ApiContext
from panel_fake.router import Route
from panel_fake.store import STATUS_RESTORING_BACKUP, STATUS_SUSPENDED, Server
from panel_fake.transformers import client_server_item
from panel_fake.wings import daemon_error, is_installed

PREFIX = "/api/client/servers/{server}"


def _authorize(ctx: ApiContext) -> Server:
    server = ctx.server
    caller = ctx.caller
    assert server is not None and caller is not None
    if caller.user.id != server.owner_id and not caller.user.root_admin:
        raise errors.model_not_found()
    return server


def conflict_detail(ctx: ApiContext, server: Server) -> str | None:
    """``Server::validateCurrentState`` and the message ``ServerStateConflictException`` picks."""
    node = ctx.runtime.state.nodes[server.node_id]
    if server.status == STATUS_SUSPENDED:
        return errors.SUSPENDED_STATE
    if node.maintenance_mode:
        return errors.NODE_MAINTENANCE
    if not is_installed(server, ctx.runtime.flavor):
        return errors.NOT_INSTALLED
    if server.status == STATUS_RESTORING_BACKUP:
        return errors.RESTORING_BACKUP
    if server.transferring:
        return errors.TRANSFERRING
    return None


async def view_server(ctx: ApiContext) -> Response:
    server = _authorize(ctx)
    return ctx.json(client_server_item(ctx.view, server))


async def server_resources(ctx: ApiContext) -> Response:
    server = _authorize(ctx)
    detail = conflict_detail(ctx, server)
    if detail is not None:
        raise errors.conflict("ServerStateConflictException", detail)
    result = ctx.runtime.wings.call(server.node_id, "resources")
    if result.failed:
        raise daemon_error(result, ctx.runtime.flavor)
    running = server.start_on_completion and server.installed_at is not None
    return ctx.json(
        {
            "object": "stats",
            "attributes": {
                "current_state": "running" if running else "offline",
                "is_suspended": False,
                "resources": {
                    "memory_bytes": 536_870_912 if running else 0,
                    "cpu_absolute": 12.5 if running else 0,
                    "disk_bytes": 104_857_600,
                    "network_rx_bytes": 0,
                    "network_tx_bytes": 0,
                    "uptime": 1000 if running else 0,
                },
            },
        }
    )


ROUTES: list[Route] = [
    Route("GET", PREFIX, view_server, api="client"),
    Route("GET", PREFIX + "/resources", server_resources, api="client"),
]
