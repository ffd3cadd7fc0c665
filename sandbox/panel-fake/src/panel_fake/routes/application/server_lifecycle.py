"""Suspend, unsuspend, reinstall and delete: ``SuspensionService``, ``ReinstallServerService`` and
``ServerDeletionService``, with the pitfalls a shop's provisioner meets (reference §4.3, §8).

* **Suspension** is a no-op (204) when the server is already in that state, then 409
  ``ConflictHttpException`` during a transfer, then the status is written (``suspended``, or
  **null** on unsuspend, whatever it was: ``installing`` and ``install_failed`` are lost) and
  Wings is asked to sync. If Wings fails, Pterodactyl rolls the status back, not to what it was
  but to the *opposite* state (a failed suspend of an installing server leaves it ``null``), and
  answers ``DaemonConnectionException``; Pelican leaves the new status and answers 500.
* **Delete** asks Wings first. Pterodactyl aborts on any Wings error except a 404 unless
  ``/force``; Pelican aborts only when Wings cannot be reached (an HTTP error from Wings is
  logged and the server deleted anyway), then deletes backups stored off Wings (S3), whose
  failure aborts a non-forced delete. Locked backups never block a delete: the panel's lock
  only guards deleting the backup itself; the rows go with the server (``ON DELETE CASCADE``).
"""

from __future__ import annotations

import asyncio

from starlette.responses import Response

from panel_fake import errors
from panel_fake.pipeline import ApiContext
from panel_fake.store import BACKUP_ADAPTER_WINGS, STATUS_INSTALLING, STATUS_SUSPENDED, Server
from panel_fake.wings import daemon_error

TRANSFER_CONFLICT = "Cannot toggle suspension status on a server that is currently being transferred."


def _server(ctx: ApiContext) -> Server:
    assert ctx.server is not None
    return ctx.server


async def _toggle_suspension(ctx: ApiContext, suspend: bool) -> Response:
    runtime = ctx.runtime
    server = _server(ctx)
    if suspend == (server.status == STATUS_SUSPENDED):
        return ctx.no_content()
    if server.transferring:
        raise errors.conflict("ConflictHttpException", TRANSFER_CONFLICT)
    server.status = STATUS_SUSPENDED if suspend else None
    server.touch()
    result = runtime.wings.call(server.node_id, "suspend" if suspend else "unsuspend")
    if result.failed:
        if not ctx.pelican:
            server.status = None if suspend else STATUS_SUSPENDED
            server.touch()
        raise daemon_error(result, runtime.flavor)
    if result.hangs:
        await asyncio.sleep(runtime.hang_for(server.node_id))
    return ctx.no_content()


async def suspend_server(ctx: ApiContext) -> Response:
    return await _toggle_suspension(ctx, True)


async def unsuspend_server(ctx: ApiContext) -> Response:
    return await _toggle_suspension(ctx, False)


async def reinstall_server(ctx: ApiContext) -> Response:
    """``ReinstallServerService``: status ``installing`` and the Wings call in one transaction."""
    runtime = ctx.runtime
    server = _server(ctx)
    previous = server.status
    server.status = STATUS_INSTALLING
    result = runtime.wings.call(server.node_id, "reinstall")
    if result.failed:
        server.status = previous
        raise daemon_error(result, runtime.flavor)
    server.touch()
    runtime.installs.start(server, reinstall=True, now=runtime.now())
    if result.hangs:
        await asyncio.sleep(runtime.hang_for(server.node_id))
    return ctx.no_content()


def _check_deletable(ctx: ApiContext, server: Server, force: bool) -> float:
    """Raise what the flavour's ``ServerDeletionService`` raises before anything is deleted;
    else return how long the Wings call hangs (0 when it does not)."""
    runtime = ctx.runtime
    result = runtime.wings.call(server.node_id, "delete")
    if ctx.pelican:
        if result.kind == "unreachable" and not force:
            raise daemon_error(result, runtime.flavor)
        for backup in runtime.state.server_backups(server.id):
            if backup.adapter != BACKUP_ADAPTER_WINGS and backup.fail_delete and not force:
                raise errors.generic("S3Exception")
    elif result.failed and not force and not result.not_found:
        raise daemon_error(result, runtime.flavor)
    return runtime.hang_for(server.node_id) if result.hangs else 0.0


async def delete_server(ctx: ApiContext) -> Response:
    """``DELETE /servers/{id}`` and ``/{force}``; only the exact segment ``force`` forces."""
    runtime = ctx.runtime
    server = _server(ctx)
    force = ctx.params.get("force") == "force"
    hang = _check_deletable(ctx, server, force)
    runtime.state.delete_server(server.id)
    runtime.installs.cancel(server.id)
    if hang:
        await asyncio.sleep(hang)
    return ctx.no_content()
