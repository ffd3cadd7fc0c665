"""``PATCH /api/application/servers/{id}/build``: ``UpdateServerBuildConfigurationRequest`` and
``BuildModificationService``.

What a shop changing a plan has to get right, as the real panel does it:

* **No partial bodies.** ``allocation`` (Pterodactyl) and ``feature_limits`` with
  ``databases`` and ``backups`` are always required, and the limits come either as a
  ``limits`` object (each of memory, swap, io, cpu, disk ``required_with:limits``) or, on
  Pterodactyl and Pelican beta38, as the legacy top-level fields (``required_without:limits``).
  Everything omitted is reported in one 422, in the rule order of the request class.
* **Omitted feature limits are written.** ``feature_limits.allocations`` absent stores null,
  ``databases: null`` stores null, ``backups: null`` stores 0.
* **Allocations.** ``add_allocations`` takes only free ports of the server's node (others are
  skipped silently); removing the default allocation needs a fallback (Pterodactyl: 400
  ``DisplayException``; Pelican picks another one itself); a new default must belong to the
  server (Pterodactyl 400, Pelican 404). Any of these errors rolls the whole change back.
* **Wings is told afterwards, and its failure does not undo anything.** Pterodactyl logs a
  ``DaemonConnectionException`` and answers 200; Pelican ignores a connection failure but not
  an HTTP error from Wings, which becomes a 500 *after* the change was committed.
* Pelican (beta38): ``oom_killer`` instead of ``oom_disabled`` (which it then ignores), io
  from 0, and ``allocation`` optional but read unconditionally, so omitting it is a 500
  ``ErrorException`` (PHP's "Undefined array key") after validation passed; ``null`` clears
  the default allocation.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from starlette.responses import Response

from panel_fake import errors, php
from panel_fake.pipeline import ApiContext
from panel_fake.routes.application.server_create import THREADS_RULE
from panel_fake.routes.common import validate_or_raise
from panel_fake.store import Allocation, PanelState, Server
from panel_fake.transformers import server_item
from panel_fake.validation import MISSING, CustomRule, RuleSpec
from panel_fake.wings import daemon_error

LIMIT_FIELDS = ("memory", "swap", "io", "cpu", "threads", "disk")
NO_FALLBACK = (
    "You are attempting to delete the default allocation for this server but there is no fallback allocation to use."
)
NOT_ASSIGNED = "The requested default allocation is not currently assigned to this server."

ATTRIBUTES = {
    "add_allocations": "allocations to add",
    "remove_allocations": "allocations to remove",
    "add_allocations.*": "allocation to add",
    "remove_allocations.*": "allocation to remove",
    "feature_limits.databases": "Database Limit",
    "feature_limits.allocations": "Allocation Limit",
    "feature_limits.backups": "Backup Limit",
}


# --------------------------------------------------------------------------- rules


def _allocation_rules(state: PanelState, server: Server) -> tuple[CustomRule, CustomRule]:
    """``unique:servers`` (on ``allocation_id``, ignoring this server) and ``exists:allocations,id``."""

    def unique(value: Any) -> bool:
        wanted = php.db_int(value)
        return wanted is None or not any(
            other.allocation_id == wanted and other.id != server.id for other in state.servers.values()
        )

    def exists(value: Any) -> bool:
        wanted = php.db_int(value)
        return wanted is not None and wanted in state.allocations

    return CustomRule("unique", unique, presence=True), CustomRule("exists", exists, presence=True)


def _model_rules(pelican: bool) -> dict[str, str]:
    """``Server::$validationRules`` for the limit columns."""
    return {
        "memory": "required|numeric|min:0",
        "swap": "required|numeric|min:-1",
        "io": "required|numeric|between:0,1000" if pelican else "required|numeric|between:10,1000",
        "cpu": "required|numeric|min:0",
        "threads": THREADS_RULE,
        "disk": "required|numeric|min:0",
    }


def _required_to_optional(rules: str, replacement: str) -> str:
    """``requiredToOptional``: drop ``required`` and put ``required_with``/``required_without`` first."""
    parts = rules.split("|")
    if "required" not in parts:
        return rules
    return "|".join([replacement, *(part for part in parts if part != "required")])


def build_rules(state: PanelState, server: Server, pelican: bool) -> list[tuple[str, RuleSpec]]:
    """``UpdateServerBuildConfigurationRequest::rules``, in its order (Pelican beta38 or Pterodactyl 1.11)."""
    unique, exists = _allocation_rules(state, server)
    model = _model_rules(pelican)
    rules: list[tuple[str, RuleSpec]] = []
    if pelican:
        rules.append(("allocation", ["sometimes", "nullable", unique, exists]))
        rules.append(("oom_killer", "sometimes|boolean"))
    else:
        rules.append(("allocation", ["required", "bail", unique, exists]))
        rules.append(("oom_disabled", "sometimes|boolean"))
    rules.append(("limits", "sometimes|array"))
    # The model's rule order is memory, swap, io, cpu, threads, disk.
    for name in LIMIT_FIELDS:
        rules.append((f"limits.{name}", _required_to_optional(model[name], "required_with:limits")))
    for name in LIMIT_FIELDS:
        rules.append((name, _required_to_optional(model[name], "required_without:limits")))
    rules += [
        ("add_allocations", "bail|array"),
        ("add_allocations.*", "integer"),
        ("remove_allocations", "bail|array"),
        ("remove_allocations.*", "integer"),
        ("feature_limits", "required|array"),
        ("feature_limits.databases", "present|nullable|integer|min:0"),
        ("feature_limits.allocations", "sometimes|nullable|integer|min:0"),
        ("feature_limits.backups", "present|nullable|integer|min:0"),
    ]
    return rules


# --------------------------------------------------------------------------- validated data


def _items(value: Any) -> list[Any]:
    if isinstance(value, list):
        return list(value)
    if isinstance(value, dict):
        return list(value.values())
    return []


@dataclass
class BuildChange:
    """``$request->validated()`` after the request class reshaped it: what the service receives."""

    pelican: bool
    allocation: Any = MISSING
    oom: Any = MISSING
    limits: dict[str, Any] = field(default_factory=dict)
    add: list[Any] = field(default_factory=list)
    remove: list[Any] = field(default_factory=list)
    database_limit: Any = None
    allocation_limit: Any = None
    backup_limit: Any = None


def validated_change(data: dict[str, Any], pelican: bool) -> BuildChange:
    """Only validated keys survive (``excludeUnvalidatedArrayKeys``); ``limits.*`` win over legacy fields."""
    change = BuildChange(pelican=pelican, allocation=data.get("allocation", MISSING))
    oom_key = "oom_killer" if pelican else "oom_disabled"
    if oom_key in data:
        change.oom = data[oom_key]
    for name in LIMIT_FIELDS:
        if name in data:
            change.limits[name] = data[name]
    limits = data.get("limits")
    if isinstance(limits, dict):
        for name in LIMIT_FIELDS:
            if name in limits:
                change.limits[name] = limits[name]
    change.add = _items(data.get("add_allocations"))
    change.remove = _items(data.get("remove_allocations"))
    feature_limits = data.get("feature_limits")
    feature_limits = feature_limits if isinstance(feature_limits, dict) else {}
    change.database_limit = feature_limits.get("databases")
    change.allocation_limit = feature_limits.get("allocations")
    change.backup_limit = feature_limits.get("backups")
    return change


# --------------------------------------------------------------------------- allocations


@dataclass
class AllocationPlan:
    """The allocation side of the transaction: applied only if nothing below raises."""

    default: Any
    add: list[Allocation] = field(default_factory=list)
    remove: list[Allocation] = field(default_factory=list)

    def owned_after(self, state: PanelState, server: Server) -> set[int]:
        owned = {a.id for a in state.server_allocations(server)} | {a.id for a in self.add}
        return owned - {a.id for a in self.remove}


def _ids(values: list[Any]) -> set[int]:
    return {wanted for value in values if (wanted := php.db_int(value)) is not None}


def _free_on_node(state: PanelState, server: Server, values: list[Any]) -> list[Allocation]:
    """``where node_id = server's, id in (…), server_id is null``, in id order."""
    found = (state.allocations.get(allocation_id) for allocation_id in sorted(_ids(values)))
    return [a for a in found if a is not None and a.node_id == server.node_id and a.server_id is None]


def _not_also_added(remove: list[Any], add: list[Any]) -> set[int]:
    """``array_diff($remove, $add)``: PHP compares the string forms."""
    added = {php.to_string(value) for value in add}
    return _ids([value for value in remove if php.to_string(value) not in added])


def pterodactyl_allocations(state: PanelState, server: Server, change: BuildChange) -> AllocationPlan:
    plan = AllocationPlan(default=change.allocation)
    if not change.add and not change.remove:
        return plan
    fresh: int | None = None
    if change.add:
        plan.add = _free_on_node(state, server, change.add)
        fresh = plan.add[0].id if plan.add else None
    if change.remove:
        for value in change.remove:
            # A strict comparison with the *requested* default: "13" never matches 13.
            if php.strict_equals(value, plan.default):
                if fresh is None:
                    raise errors.display("DisplayException", NO_FALLBACK)
                plan.default = fresh
        removable = _not_also_added(change.remove, change.add)
        plan.remove = [a for a in state.server_allocations(server) if a.id in removable]
    return plan


def pelican_allocations(state: PanelState, server: Server, change: BuildChange) -> AllocationPlan:
    plan = AllocationPlan(default=change.allocation)
    if not change.add and not change.remove:
        return plan
    if change.add:
        plan.add = _free_on_node(state, server, change.add)
    if change.remove:
        removable = _not_also_added(change.remove, change.add)
        owned = sorted({a.id for a in state.server_allocations(server)} | {a.id for a in plan.add})
        plan.remove = [state.allocations[aid] for aid in owned if aid in removable]
        if server.allocation_id is not None and server.allocation_id in removable and server.allocation_id in owned:
            # The service picks the new default itself, over whatever the request asked for.
            removed = _ids(change.remove)
            others = [aid for aid in owned if aid not in removed]
            plan.default = others[0] if others else (change.add[0] if change.add else None)
    return plan


def resolve_default(state: PanelState, server: Server, plan: AllocationPlan, pelican: bool) -> int | None:
    """The ``allocation_id`` to store. A changed default must be one of the server's allocations
    once the plan is applied (Pterodactyl 400 ``DisplayException``, Pelican ``findOrFail``: 404);
    Pelican's ``allocation: null`` skips the check and clears the default."""
    if plan.default is None:
        return None
    wanted = php.db_int(plan.default)
    if wanted is not None and wanted == server.allocation_id:
        return wanted
    if wanted is None or wanted not in plan.owned_after(state, server):
        if pelican:
            raise errors.model_not_found()
        raise errors.display("DisplayException", NOT_ASSIGNED)
    return wanted


# --------------------------------------------------------------------------- the controller


def apply_change(
    state: PanelState, server: Server, change: BuildChange, plan: AllocationPlan, default: int | None
) -> None:
    """``forceFill(...)->saveOrFail()`` and the allocation updates, then ``refresh()``'s casts."""
    for allocation in plan.add:
        state.assign_allocation(server, allocation)
    for allocation in plan.remove:
        state.release_allocation(allocation)
    server.allocation_id = default
    if change.oom is not MISSING:
        chosen = php.truthy(change.oom)
        server.oom_disabled = not chosen if change.pelican else chosen
    limits = change.limits
    if "swap" in limits:
        server.swap = php.db_store_int(limits["swap"])
    if "io" in limits:
        server.io = php.db_store_int(limits["io"])
    if "threads" in limits:
        threads = limits["threads"]
        server.threads = php.to_string(threads) if threads is not None else None
    state.set_server_resources(
        server,
        memory=php.db_store_int(limits["memory"]) if "memory" in limits else server.memory,
        disk=php.db_store_int(limits["disk"]) if "disk" in limits else server.disk,
        cpu=php.db_store_int(limits["cpu"]) if "cpu" in limits else server.cpu,
    )
    server.database_limit = None if change.database_limit is None else php.db_store_int(change.database_limit)
    server.allocation_limit = None if change.allocation_limit is None else php.db_store_int(change.allocation_limit)
    server.backup_limit = 0 if change.backup_limit is None else php.db_store_int(change.backup_limit)
    server.touch()


async def update_build(ctx: ApiContext) -> Response:
    runtime = ctx.runtime
    state = runtime.state
    server = ctx.server
    assert server is not None
    pelican = ctx.pelican
    validate_or_raise(ctx.input, build_rules(state, server, pelican), attributes=ATTRIBUTES)
    change = validated_change(ctx.input, pelican)
    if change.allocation is MISSING:
        # Pelican: ``$data['allocation']`` on a key that validation left out ("Undefined array key").
        raise errors.generic("ErrorException")
    plan = (pelican_allocations if pelican else pterodactyl_allocations)(state, server, change)
    default = resolve_default(state, server, plan, pelican)
    apply_change(state, server, change, plan, default)

    result = runtime.wings.call(server.node_id, "build")
    if result.hangs:
        await asyncio.sleep(runtime.hang_for(server.node_id))
    if pelican and result.kind == "error":
        raise daemon_error(result, runtime.flavor)  # RequestException is not caught; the change stays
    return ctx.json(server_item(ctx.view, server, ctx.includes()))
