"""``/_fake`` routes that change the panel's rows behind the shop's back.

A drift reconciler or a termination flow has to cope with what an administrator (or another
tool) does directly in the panel: servers created without the shop (orphans, with any
``external_id``), suspended or unsuspended by hand, resized, deleted, put into a transfer, and
backups taken and locked by the customer. These routes write the rows directly, as the
panel's admin area or its database would: no validation beyond the database's own unique
indexes, no Wings call, nothing in the request log. Installs that are running keep running
(Wings still reports them), so a status set by hand on an installing server may be replaced
when the install finishes, as on a real panel.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from panel_fake.routes.control import Runtime, server_summary
from panel_fake.runtime import PanelRuntime
from panel_fake.store import (
    STATUS_INSTALLING,
    Backup,
    Server,
    new_uuid,
    utcnow,
)

router = APIRouter(prefix="/_fake", tags=["control: rows"])


class ServerRowBody(BaseModel):
    """A server row written directly; defaults make a small installed server on node 1."""

    external_id: str | None = Field(default=None, description="any value, or null for a server the shop never made")
    name: str = "Orphan server"
    description: str = ""
    user: int = 1
    egg: int = 1
    node: int = 1
    allocation: int | None = Field(default=None, description="a free allocation of the node; default: the lowest free")
    status: str | None = Field(default=None, description="null (installed), installing, install_failed, suspended…")
    memory: int = 1024
    swap: int = 0
    disk: int = 1024
    io: int = 500
    cpu: int = 100
    threads: str | None = None
    oom_disabled: bool = True
    databases: int | None = 0
    allocations: int | None = 0
    backups: int = 0


class ServerPatchBody(BaseModel):
    """Fields to overwrite; only those present in the body change (``status: null`` unsuspends)."""

    status: str | None = None
    transferring: bool | None = Field(default=None, description="an active transfer: suspension toggles give 409")
    external_id: str | None = None
    name: str | None = None
    memory: int | None = None
    swap: int | None = None
    disk: int | None = None
    io: int | None = None
    cpu: int | None = None
    threads: str | None = None
    oom_disabled: bool | None = None
    databases: int | None = None
    allocations: int | None = None
    backups: int | None = None


class BackupBody(BaseModel):
    name: str | None = None
    locked: bool = False
    successful: bool = True
    completed: bool = True
    adapter: Literal["wings", "s3"] = "wings"
    fail_delete: bool = Field(default=False, description="deleting it from its (S3) adapter fails")
    bytes: int = Field(default=0, ge=0)


def _server(runtime: PanelRuntime, server_id: int) -> Server:
    server = runtime.state.servers.get(server_id)
    if server is None:
        raise HTTPException(status_code=404, detail=f"server {server_id} does not exist")
    return server


def _backup(runtime: PanelRuntime, backup_id: int) -> Backup:
    backup = runtime.state.backups.get(backup_id)
    if backup is None:
        raise HTTPException(status_code=404, detail=f"backup {backup_id} does not exist")
    return backup


def backup_summary(backup: Backup) -> dict[str, Any]:
    return {
        "id": backup.id,
        "uuid": backup.uuid,
        "server": backup.server_id,
        "name": backup.name,
        "is_successful": backup.is_successful,
        "is_locked": backup.is_locked,
        "adapter": backup.adapter,
        "fail_delete": backup.fail_delete,
        "bytes": backup.bytes,
        "created_at": backup.created_at.isoformat(),
        "completed_at": backup.completed_at.isoformat() if backup.completed_at else None,
    }


def _free_allocation(runtime: PanelRuntime, node_id: int, wanted: int | None) -> int:
    state = runtime.state
    if wanted is not None:
        allocation = state.allocations.get(wanted)
        if allocation is None or allocation.node_id != node_id or allocation.server_id is not None:
            raise HTTPException(
                status_code=409, detail=f"allocation {wanted} is not a free allocation of node {node_id}"
            )
        return wanted
    free = state.free_allocations.get(node_id, set())
    if not free:
        raise HTTPException(status_code=409, detail=f"node {node_id} has no free allocation")
    return min(free)


def _check_external_id(runtime: PanelRuntime, external_id: str | None, server_id: int | None) -> None:
    """The database's unique index on ``servers.external_id`` (case-insensitive)."""
    if external_id is not None and runtime.state.external_id_taken(external_id, server_id):
        raise HTTPException(status_code=409, detail=f"external_id {external_id!r} is taken")


@router.post("/servers")
async def create_server_row(body: ServerRowBody, runtime: Runtime) -> dict[str, Any]:
    """Insert a server without validation or Wings: cheap orphans for reconciler tests."""
    state = runtime.state
    if body.node not in state.nodes:
        raise HTTPException(status_code=404, detail=f"node {body.node} does not exist")
    egg = state.eggs.get(body.egg)
    if egg is None:
        raise HTTPException(status_code=404, detail=f"egg {body.egg} does not exist")
    if body.user not in state.users:
        raise HTTPException(status_code=404, detail=f"user {body.user} does not exist")
    _check_external_id(runtime, body.external_id, None)
    allocation_id = _free_allocation(runtime, body.node, body.allocation)
    uuid = new_uuid()
    while state.find_server_by_identifier(uuid[:8]) is not None:
        uuid = new_uuid()
    now = utcnow()
    server = Server(
        id=state.next_id("servers"),
        uuid=uuid,
        external_id=body.external_id,
        name=body.name,
        description=body.description,
        status=body.status,
        skip_scripts=False,
        owner_id=body.user,
        node_id=body.node,
        allocation_id=allocation_id,
        nest_id=egg.nest_id,
        egg_id=egg.id,
        memory=body.memory,
        swap=body.swap,
        disk=body.disk,
        io=body.io,
        cpu=body.cpu,
        threads=body.threads,
        oom_disabled=body.oom_disabled,
        startup=egg.startup,
        image=egg.first_image,
        database_limit=body.databases,
        allocation_limit=body.allocations,
        backup_limit=body.backups,
        variables={variable.id: variable.default_value for variable in egg.variables},
        created_at=now,
        updated_at=now,
        installed_at=None if body.status == STATUS_INSTALLING else now,
    )
    state.insert_server(server, [allocation_id])
    return server_summary(runtime, server)


_LIMIT_FIELDS = ("swap", "io", "threads", "oom_disabled")
_FEATURE_FIELDS = {"databases": "database_limit", "allocations": "allocation_limit", "backups": "backup_limit"}


@router.patch("/servers/{server_id}")
async def edit_server_row(server_id: int, body: ServerPatchBody, runtime: Runtime) -> dict[str, Any]:
    """Overwrite columns of a server row: status (suspend/unsuspend by hand), limits, transfer flag."""
    state = runtime.state
    server = _server(runtime, server_id)
    given = body.model_fields_set
    if "external_id" in given:
        _check_external_id(runtime, body.external_id, server.id)
        state.set_server_external_id(server, body.external_id)
    if "status" in given:
        server.status = body.status
    if body.transferring is not None:
        server.transferring = body.transferring
    if body.name is not None:
        server.name = body.name
    for name in _LIMIT_FIELDS:
        if name in given and (name == "threads" or getattr(body, name) is not None):
            setattr(server, name, getattr(body, name))
    for name, column in _FEATURE_FIELDS.items():
        if name in given and (name != "backups" or body.backups is not None):
            setattr(server, column, getattr(body, name))
    state.set_server_resources(
        server,
        memory=body.memory if body.memory is not None else server.memory,
        disk=body.disk if body.disk is not None else server.disk,
        cpu=body.cpu if body.cpu is not None else server.cpu,
    )
    server.touch()
    return server_summary(runtime, server)


@router.delete("/servers/{server_id}")
async def delete_server_row(server_id: int, runtime: Runtime) -> dict[str, Any]:
    """Delete a server row by hand: its allocations are freed and its backups go with it."""
    server = _server(runtime, server_id)
    backups = len(runtime.state.server_backups(server.id))
    runtime.state.delete_server(server.id)
    runtime.installs.cancel(server.id)
    return {"deleted": server_id, "external_id": server.external_id, "backups_deleted": backups}


@router.post("/servers/{server_id}/backups")
async def create_backup(server_id: int, body: BackupBody, runtime: Runtime) -> dict[str, Any]:
    """A backup row, as if the customer took one (``locked`` as if they locked it)."""
    server = _server(runtime, server_id)
    state = runtime.state
    backup_id = state.next_id("backups")
    now = utcnow()
    backup = Backup(
        id=backup_id,
        uuid=new_uuid(),
        server_id=server.id,
        name=body.name or f"Backup at {now.strftime('%Y-%m-%d %H:%M:%S')}",
        is_successful=body.successful,
        is_locked=body.locked,
        adapter=body.adapter,
        bytes=body.bytes,
        fail_delete=body.fail_delete,
        created_at=now,
        completed_at=now if body.completed else None,
    )
    state.backups[backup.id] = backup
    return backup_summary(backup)


@router.get("/servers/{server_id}/backups")
async def list_backups(server_id: int, runtime: Runtime) -> dict[str, Any]:
    server = _server(runtime, server_id)
    backups = runtime.state.server_backups(server.id)
    return {"count": len(backups), "backups": [backup_summary(backup) for backup in backups]}


@router.post("/backups/{backup_id}/lock")
async def lock_backup(backup_id: int, runtime: Runtime) -> dict[str, Any]:
    backup = _backup(runtime, backup_id)
    backup.is_locked = True
    return backup_summary(backup)


@router.post("/backups/{backup_id}/unlock")
async def unlock_backup(backup_id: int, runtime: Runtime) -> dict[str, Any]:
    backup = _backup(runtime, backup_id)
    backup.is_locked = False
    return backup_summary(backup)


@router.delete("/backups/{backup_id}")
async def delete_backup(backup_id: int, runtime: Runtime) -> dict[str, Any]:
    """Remove a backup row by hand (the lock does not matter here)."""
    backup = _backup(runtime, backup_id)
    del runtime.state.backups[backup.id]
    return {"deleted": backup_id}
