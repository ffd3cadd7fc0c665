"""``/_fake``: the test-control API. No auth, never rate limited, never logged as panel calls.

It lets a test put the panel into the states that are hard to reach on a real one: Wings down
or failing for the next N creates, nodes full, installs failing or stuck, proxy errors and
latency in front of the panel, a lost ``external_id`` race, a tight rate limit; and read back
what the panel saw (the request log, every server with its status).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, Field, field_validator

from panel_fake import seed as seed_module
from panel_fake.auth import permissions_view
from panel_fake.runtime import PanelRuntime, RaceInjection
from panel_fake.store import Server, utcnow
from panel_fake.wings import InstallPlan, WingsMode, is_installed, parse_actions, parse_mode

router = APIRouter(prefix="/_fake", tags=["control"])


def get_runtime(request: Request) -> PanelRuntime:
    runtime: PanelRuntime = request.app.state.runtime
    runtime.tick()
    return runtime


Runtime = Annotated[PanelRuntime, Depends(get_runtime)]


class WingsBody(BaseModel):
    mode: str = Field(description="ok | unreachable | commit_then_hang | error:<status>")
    times: int | None = Field(
        default=None,
        ge=1,
        description="apply to the next N calls (create calls without `actions`, else the listed ones), then ok",
    )
    actions: list[str] | None = Field(
        default=None,
        description="only these Wings calls: create, delete, suspend, unsuspend, build, reinstall, resources "
        "(sync = suspend+unsuspend+build); without it every call sees the mode",
    )
    request_id: str | None = Field(default=None, description="X-Request-Id Wings answers with")
    error: str | None = Field(default=None, description="Wings' error text for a 4xx")
    hang_seconds: float | None = Field(default=None, ge=0, description="override hang time for this node")

    @field_validator("mode")
    @classmethod
    def _mode(cls, value: str) -> str:
        parse_mode(value)
        return value

    @field_validator("actions")
    @classmethod
    def _actions(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            parse_actions(value)
        return value


class CapacityBody(BaseModel):
    memory: int | None = None
    disk: int | None = None
    cpu: int | None = None
    memory_overallocate: int | None = None
    disk_overallocate: int | None = None
    cpu_overallocate: int | None = None
    public: bool | None = None
    maintenance_mode: bool | None = None
    tags: list[str] | None = None


class AllocationsBody(BaseModel):
    ip: str
    ports: str | int | list[str | int]
    alias: str | None = None


class InstallBody(BaseModel):
    outcome: Literal["ok", "failed", "stuck"]
    seconds: float | None = Field(default=None, ge=0)
    external_id: str | None = None
    times: int | None = Field(default=None, ge=1)


class FaultBody(BaseModel):
    status: int | None = Field(default=None, ge=100, le=599)
    times: int | None = Field(default=None, ge=1)
    method: str | None = None
    path_prefix: str = "/api/"
    latency_seconds: float = Field(default=0.0, ge=0)
    envelope: bool = False
    code: str | None = None
    detail: str | None = None
    retry_after: int | None = Field(default=None, ge=0)
    close: bool = False
    down: bool | None = None
    down_mode: Literal["503", "close"] = "503"


class RaceBody(BaseModel):
    external_id: str
    mode: Literal["query_exception"] = "query_exception"
    winner: bool = True
    times: int = Field(default=1, ge=1)


class RateLimitBody(BaseModel):
    per_minute: int | None = Field(default=None, ge=0)
    client_per_minute: int | None = Field(default=None, ge=0)


class EggVariableBody(BaseModel):
    rules: str | list[str] | None = Field(
        default=None, description="Laravel rules: a pipe string (as Pterodactyl stores them) or a list"
    )
    default_value: str | None = None


class ServerInstallBody(BaseModel):
    outcome: Literal["ok", "failed"] = "ok"


def _node(runtime: PanelRuntime, node_id: int) -> Any:
    node = runtime.state.nodes.get(node_id)
    if node is None:
        raise HTTPException(status_code=404, detail=f"node {node_id} does not exist")
    return node


def server_summary(runtime: PanelRuntime, server: Server) -> dict[str, Any]:
    """A server row as the control API shows it (the panel's own view is ``GET /api/application/servers``)."""
    pending = runtime.installs.pending.get(server.id)
    allocation = runtime.state.allocations.get(server.allocation_id) if server.allocation_id else None
    return {
        "id": server.id,
        "uuid": server.uuid,
        "identifier": server.identifier,
        "external_id": server.external_id,
        "name": server.name,
        "status": server.status,
        "installed": is_installed(server, runtime.flavor),
        "node": server.node_id,
        "allocation": server.allocation_id,
        "address": f"{allocation.ip}:{allocation.port}" if allocation else None,
        "user": server.owner_id,
        "egg": server.egg_id,
        "memory": server.memory,
        "swap": server.swap,
        "disk": server.disk,
        "io": server.io,
        "cpu": server.cpu,
        "threads": server.threads,
        "oom_disabled": server.oom_disabled,
        "feature_limits": {
            "databases": server.database_limit,
            "allocations": server.allocation_limit,
            "backups": server.backup_limit,
        },
        "allocations": sorted(a.id for a in runtime.state.server_allocations(server)),
        "transferring": server.transferring,
        "backups": len(runtime.state.server_backups(server.id)),
        "pending_install": (
            {"outcome": pending.outcome, "reinstall": pending.reinstall} if pending is not None else None
        ),
        "created_at": server.created_at.isoformat(),
    }


@router.get("/health")
async def health(runtime: Runtime) -> dict[str, Any]:
    return {
        "status": "ok",
        "flavor": runtime.flavor,
        "servers": len(runtime.state.servers),
        "rate_limit": runtime.rate_limit,
        "client_rate_limit": runtime.client_rate_limit,
        "in_flight": runtime.in_flight,
    }


@router.get("/keys")
async def keys(runtime: Runtime) -> dict[str, Any]:
    """The seeded API keys (this is a fake: they are not secrets)."""
    return {
        "keys": [
            {
                "token": key.token,
                "type": "application" if key.key_type == "application" else "client",
                "user_id": key.user_id,
                "root_admin": runtime.state.users[key.user_id].root_admin
                if key.user_id in runtime.state.users
                else None,
                "permissions": permissions_view(key, runtime.flavor),
                "description": key.description,
            }
            for key in runtime.state.api_keys.values()
        ],
        "roles": seed_module.seed_keys(runtime.flavor) if runtime.config.seed_path is None else {},
    }


@router.get("/nodes")
async def nodes(runtime: Runtime) -> dict[str, Any]:
    result = []
    for node in sorted(runtime.state.nodes.values(), key=lambda n: n.id):
        memory, disk, cpu = runtime.state.node_usage(node.id)
        allocation_ids = runtime.state.node_allocations.get(node.id, [])
        free = sum(1 for aid in allocation_ids if runtime.state.allocations[aid].server_id is None)
        mode = runtime.wings.mode_for(node.id)
        result.append(
            {
                "id": node.id,
                "name": node.name,
                "public": node.public,
                "location_id": node.location_id,
                "tags": node.tags,
                "memory": node.memory,
                "memory_overallocate": node.memory_overallocate,
                "disk": node.disk,
                "disk_overallocate": node.disk_overallocate,
                "cpu": node.cpu,
                "used": {"memory": memory, "disk": disk, "cpu": cpu},
                "allocations": {"total": len(allocation_ids), "free": free},
                "wings": {
                    "mode": mode.describe(),
                    "remaining": mode.remaining,
                    "rules": runtime.wings.describe(node.id),
                },
            }
        )
    return {"nodes": result}


@router.post("/nodes/{node_id}/wings")
async def set_wings(node_id: int, body: WingsBody, runtime: Runtime) -> dict[str, Any]:
    _node(runtime, node_id)
    kind, status = parse_mode(body.mode)
    actions = parse_actions(body.actions) if body.actions is not None else None
    runtime.wings.set_mode(
        node_id,
        WingsMode(
            kind=kind,
            status=status,
            remaining=body.times,
            request_id=body.request_id,
            error=body.error,
            actions=actions,
        ),
    )
    if body.hang_seconds is not None:
        runtime.hang_overrides[node_id] = body.hang_seconds
    return {
        "node": node_id,
        "mode": body.mode,
        "times": body.times,
        "actions": sorted(actions) if actions is not None else None,
        "rules": runtime.wings.describe(node_id),
    }


@router.post("/nodes/{node_id}/capacity")
async def set_capacity(node_id: int, body: CapacityBody, runtime: Runtime) -> dict[str, Any]:
    node = _node(runtime, node_id)
    for name, value in body.model_dump(exclude_none=True).items():
        setattr(node, name, value)
    return {
        "node": node_id,
        "memory": node.memory,
        "disk": node.disk,
        "cpu": node.cpu,
        "memory_overallocate": node.memory_overallocate,
        "disk_overallocate": node.disk_overallocate,
        "cpu_overallocate": node.cpu_overallocate,
        "public": node.public,
        "maintenance_mode": node.maintenance_mode,
        "tags": node.tags,
    }


@router.post("/nodes/{node_id}/allocations")
async def add_allocations(node_id: int, body: AllocationsBody, runtime: Runtime) -> dict[str, Any]:
    _node(runtime, node_id)
    try:
        ports = seed_module.parse_ports(body.ports)
    except ValueError as exc:
        raise HTTPException(status_code=422, detail=f"invalid ports: {exc}") from exc
    created = []
    for port in ports:
        if not 1 <= port <= 65535:
            raise HTTPException(status_code=422, detail=f"port {port} is out of range")
        allocation = runtime.state.add_allocation(node_id, body.ip, port, body.alias)
        if allocation is not None:
            created.append(allocation.id)
    return {"node": node_id, "created": len(created), "allocation_ids": created}


@router.post("/install")
async def set_install(body: InstallBody, runtime: Runtime) -> dict[str, Any]:
    installs = runtime.installs
    seconds = body.seconds
    if body.external_id is not None:
        plan = InstallPlan(body.outcome, seconds if seconds is not None else installs.default.seconds)
        installs.by_external[body.external_id.casefold()] = plan
        server = runtime.state.find_server_by_external(body.external_id)
        if server is not None:
            installs.override_pending(server.id, body.outcome, seconds, runtime.now())
        return {
            "scope": "external_id",
            "external_id": body.external_id,
            "outcome": plan.outcome,
            "seconds": plan.seconds,
        }
    if body.times is not None:
        plan = InstallPlan(body.outcome, seconds if seconds is not None else installs.default.seconds)
        installs.queue.extend([plan] * body.times)
        return {"scope": "next", "times": body.times, "outcome": plan.outcome, "seconds": plan.seconds}
    installs.default = InstallPlan(body.outcome, seconds if seconds is not None else installs.default.seconds)
    return {"scope": "default", "outcome": installs.default.outcome, "seconds": installs.default.seconds}


@router.post("/faults")
async def add_fault(body: FaultBody, runtime: Runtime) -> dict[str, Any]:
    if body.down is not None:
        runtime.faults.down = body.down_mode if body.down else None
        return {"down": runtime.faults.down}
    if body.status is None and body.latency_seconds == 0 and not body.close:
        raise HTTPException(status_code=422, detail="give status, latency_seconds, close or down")
    fault = runtime.faults.add(
        status=body.status,
        times=body.times,
        method=body.method,
        path_prefix=body.path_prefix,
        latency_seconds=body.latency_seconds,
        envelope=body.envelope,
        code=body.code,
        detail=body.detail,
        retry_after=body.retry_after,
        close=body.close,
    )
    return {"fault": fault.describe()}


@router.get("/faults")
async def list_faults(runtime: Runtime) -> dict[str, Any]:
    return {"down": runtime.faults.down, "faults": [fault.describe() for fault in runtime.faults.faults]}


@router.delete("/faults")
async def clear_faults(runtime: Runtime) -> dict[str, Any]:
    runtime.faults.clear()
    return {"cleared": True}


@router.post("/race")
async def inject_race(body: RaceBody, runtime: Runtime) -> dict[str, Any]:
    runtime.races[body.external_id.casefold()] = RaceInjection(mode=body.mode, winner=body.winner, remaining=body.times)
    return {"external_id": body.external_id, "mode": body.mode, "winner": body.winner, "times": body.times}


@router.post("/rate-limit")
async def set_rate_limit(body: RateLimitBody, runtime: Runtime) -> dict[str, Any]:
    if body.per_minute is not None:
        runtime.rate_limit = body.per_minute
    if body.client_per_minute is not None:
        runtime.client_rate_limit = body.client_per_minute
    runtime.limiter.reset()
    return {"per_minute": runtime.rate_limit, "client_per_minute": runtime.client_rate_limit}


@router.get("/requests")
async def list_requests(
    runtime: Runtime,
    external_id: str | None = Query(default=None),
    method: str | None = Query(default=None),
    path_prefix: str | None = Query(default=None),
    path: str | None = Query(default=None, description="exact path, e.g. /api/application/servers/5/suspend"),
    status: int | None = Query(default=None),
) -> dict[str, Any]:
    entries = runtime.log.entries(
        external_id=external_id, method=method, path_prefix=path_prefix, path=path, status=status
    )
    return {"count": len(entries), "requests": [entry.as_dict() for entry in entries]}


@router.get("/requests/counts")
async def count_requests(
    runtime: Runtime,
    external_id: str | None = Query(default=None),
    method: str | None = Query(default=None),
    path_prefix: str | None = Query(default=None),
    status: int | None = Query(default=None),
) -> dict[str, Any]:
    """Panel calls per ``"METHOD /path"``, e.g. ``{"POST /api/application/servers/5/suspend": 2}``."""
    entries = runtime.log.entries(external_id=external_id, method=method, path_prefix=path_prefix, status=status)
    counts: dict[str, int] = {}
    for entry in entries:
        key = f"{entry.method} {entry.path}"
        counts[key] = counts.get(key, 0) + 1
    return {"total": len(entries), "counts": counts}


@router.delete("/requests")
async def clear_requests(runtime: Runtime) -> dict[str, Any]:
    runtime.log.clear()
    return {"cleared": True}


@router.get("/servers")
async def list_servers(runtime: Runtime, external_id: str | None = Query(default=None)) -> dict[str, Any]:
    servers = sorted(runtime.state.servers.values(), key=lambda s: s.id)
    if external_id is not None:
        servers = [
            s for s in servers if s.external_id is not None and s.external_id.casefold() == external_id.casefold()
        ]
    return {"count": len(servers), "servers": [server_summary(runtime, server) for server in servers]}


@router.patch("/eggs/{egg_id}/variables/{env_variable}")
async def edit_egg_variable(egg_id: int, env_variable: str, body: EggVariableBody, runtime: Runtime) -> dict[str, Any]:
    """An administrator edits an egg variable (its rules or default), as in the panel's admin area."""
    egg = runtime.state.eggs.get(egg_id)
    if egg is None:
        raise HTTPException(status_code=404, detail=f"egg {egg_id} does not exist")
    variable = next((v for v in egg.variables if v.env_variable == env_variable), None)
    if variable is None:
        raise HTTPException(status_code=404, detail=f"egg {egg_id} has no variable {env_variable}")
    if body.rules is not None:
        rules = body.rules.split("|") if isinstance(body.rules, str) else list(body.rules)
        variable.rules = [rule for rule in rules if rule]
    if body.default_value is not None:
        variable.default_value = body.default_value
    variable.updated_at = utcnow()
    return {
        "egg": egg_id,
        "env_variable": variable.env_variable,
        "rules": variable.rules,
        "default_value": variable.default_value,
    }


@router.post("/servers/{server_id}/install")
async def finish_install(server_id: int, body: ServerInstallBody, runtime: Runtime) -> dict[str, Any]:
    server = runtime.state.servers.get(server_id)
    if server is None:
        raise HTTPException(status_code=404, detail=f"server {server_id} does not exist")
    runtime.installs.finish_now(runtime.state, server, successful=body.outcome == "ok")
    return server_summary(runtime, server)


@router.delete("/data")
async def reset_data(runtime: Runtime) -> dict[str, Any]:
    runtime.reset()
    return {"reset": True, "flavor": runtime.flavor}
