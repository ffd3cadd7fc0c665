"""``POST /api/application/servers``: the request rules and ``ServerCreationService``.

Order, as the real panel: request rules (422, all failures at once) → deployment (400
``NoViableNodeException``, ``DisplayException`` for a port range over 1000 ports,
``NoViableAllocationException``) → egg-variable rules (422, reported alone) → insert the row,
claim allocations, store variables (omitted ones as ``""``, defaults *not* applied) → the
Wings call with its fault modes → 201 with the server item (``status: installing``).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.responses import Response

from panel_fake import errors, php
from panel_fake.deploy import parse_port_specs, select_allocation, viable_nodes
from panel_fake.pipeline import ApiContext
from panel_fake.routes.common import validate_or_raise
from panel_fake.store import STATUS_INSTALLING, Egg, PanelState, Server, new_uuid, utcnow
from panel_fake.transformers import server_item
from panel_fake.validation import MISSING, CustomRule, RuleSpec, Sometimes, get
from panel_fake.wings import daemon_error

DOCKER_IMAGE_RULE = r"regex:/^~?[\w\.\/\-:@ ]*$/"
THREADS_RULE = "nullable|regex:/^[0-9-,]+$/"


def _exists(check: Any) -> CustomRule:
    return CustomRule("exists", check, presence=True)


def db_rules(state: PanelState, ignore_server: int | None = None) -> dict[str, CustomRule]:
    """The database-backed rules of the server requests."""

    def user_exists(value: Any) -> bool:
        user_id = php.db_int(value)
        return user_id is not None and user_id in state.users

    def egg_exists(value: Any) -> bool:
        egg_id = php.db_int(value)
        return egg_id is not None and egg_id in state.eggs

    def allocation_unassigned(value: Any) -> bool:
        allocation_id = php.db_int(value)
        allocation = state.allocations.get(allocation_id) if allocation_id is not None else None
        return allocation is not None and allocation.server_id is None

    def external_unique(value: Any) -> bool:
        return not state.external_id_taken(php.to_string(value), ignore_server)

    return {
        "user": _exists(user_exists),
        "egg": _exists(egg_exists),
        "allocation": _exists(allocation_unassigned),
        "external_id": CustomRule("unique", external_unique, presence=True),
    }


def _deploy_truthy(data: dict[str, Any]) -> bool:
    return php.truthy(data.get("deploy"))


def pterodactyl_rules(state: PanelState) -> tuple[list[tuple[str, RuleSpec]], list[Sometimes]]:
    """``StoreServerRequest::rules`` and ``withValidator`` (Pterodactyl 1.11)."""
    db = db_rules(state)
    rules: list[tuple[str, RuleSpec]] = [
        ("external_id", ["sometimes", "nullable", "string", "between:1,191", db["external_id"]]),
        ("name", "required|string|min:1|max:191"),
        ("description", "nullable|string"),
        ("user", ["required", "integer", db["user"]]),
        ("egg", ["required", db["egg"]]),
        ("docker_image", ["required", "string", "max:191", DOCKER_IMAGE_RULE]),
        ("startup", "required|string"),
        ("environment", "present|array"),
        ("skip_scripts", "sometimes|boolean"),
        ("oom_disabled", "sometimes|boolean"),
        ("limits", "required|array"),
        ("limits.memory", "required|numeric|min:0"),
        ("limits.swap", "required|numeric|min:-1"),
        ("limits.disk", "required|numeric|min:0"),
        ("limits.io", "required|numeric|between:10,1000"),
        ("limits.threads", THREADS_RULE),
        ("limits.cpu", "required|numeric|min:0"),
        ("feature_limits", "required|array"),
        ("feature_limits.databases", "present|nullable|integer|min:0"),
        ("feature_limits.allocations", "sometimes|nullable|integer|min:0"),
        ("feature_limits.backups", "present|nullable|integer|min:0"),
        ("deploy", "sometimes|required|array"),
        ("deploy.locations", "array"),
        ("deploy.locations.*", "integer|min:1"),
        # The quirk: "boolean" is read as a second field name of required_with.
        ("deploy.dedicated_ip", "required_with:deploy,boolean"),
        ("deploy.port_range", "array"),
        ("deploy.port_range.*", "string"),
        ("start_on_completion", "sometimes|boolean"),
    ]
    sometimes = [
        Sometimes(
            "allocation.default", ["required", "integer", "bail", db["allocation"]], lambda d: not _deploy_truthy(d)
        ),
        Sometimes("allocation.additional.*", ["integer", db["allocation"]], lambda d: not _deploy_truthy(d)),
        Sometimes("deploy.locations", "present", _deploy_truthy),
        Sometimes("deploy.port_range", "present", _deploy_truthy),
    ]
    return rules, sometimes


def pelican_rules(state: PanelState) -> tuple[list[tuple[str, RuleSpec]], list[Sometimes]]:
    """Pelican's ``StoreServerRequest``: optional image/startup, ``oom_killer``, deploy tags."""
    db = db_rules(state)
    rules: list[tuple[str, RuleSpec]] = [
        ("external_id", ["sometimes", "nullable", "string", "between:1,255", db["external_id"]]),
        ("name", "required|string|min:1|max:255"),
        ("description", "nullable|string"),
        ("user", ["required", "integer", db["user"]]),
        ("egg", ["required", db["egg"]]),
        ("docker_image", "sometimes|string"),
        ("docker_labels", "sometimes|array"),
        ("docker_labels.*", "required|string"),
        ("startup", "sometimes|string"),
        ("environment", "present|array"),
        ("skip_scripts", "sometimes|boolean"),
        ("oom_killer", "sometimes|boolean"),
        ("limits", "required|array"),
        ("limits.memory", "required|numeric|min:0"),
        ("limits.swap", "required|numeric|min:-1"),
        ("limits.disk", "required|numeric|min:0"),
        ("limits.io", "required|numeric|between:0,1000"),
        ("limits.threads", THREADS_RULE),
        ("limits.cpu", "required|numeric|min:0"),
        ("feature_limits", "required|array"),
        ("feature_limits.databases", "present|nullable|integer|min:0"),
        ("feature_limits.allocations", "sometimes|nullable|integer|min:0"),
        ("feature_limits.backups", "present|nullable|integer|min:0"),
        ("allocation.default", ""),
        ("allocation.additional.*", ""),
        ("deploy", "sometimes|required|array"),
        ("deploy.locations", "sometimes|array"),
        ("deploy.locations.*", "required_with:deploy.locations|integer|min:1"),
        ("deploy.tags", "array"),
        ("deploy.tags.*", "required_with:deploy.tags|string|min:1"),
        ("deploy.dedicated_ip", "required_with:deploy|boolean"),
        ("deploy.port_range", "array"),
        ("deploy.port_range.*", "string"),
        ("start_on_completion", "sometimes|boolean"),
    ]
    sometimes = [
        Sometimes(
            "allocation.default", ["required", "integer", "bail", db["allocation"]], lambda d: not _deploy_truthy(d)
        ),
        Sometimes("allocation.additional.*", ["integer", db["allocation"]], lambda d: not _deploy_truthy(d)),
        Sometimes("deploy.locations", "present", _deploy_truthy),
        Sometimes("deploy.tags", "present", _deploy_truthy),
        Sometimes("deploy.port_range", "present", _deploy_truthy),
    ]
    return rules, sometimes


def _value(data: dict[str, Any], path: str) -> Any:
    found = get(data, path)
    return None if found is MISSING else found


def _stored_string(value: Any) -> str:
    """What a TEXT column holds after PHP hands it a value."""
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return php.to_string(value)


def validate_environment(ctx: ApiContext, egg: Egg, environment: Any) -> dict[int, str]:
    """``VariableValidatorService`` at admin level: every variable, hidden ones included.

    Returns the values to store: the given value, or ``""`` when omitted (never the default).
    """
    fields = environment if isinstance(environment, dict) else {}
    data: dict[str, Any] = {"environment": {}}
    rules: list[tuple[str, RuleSpec]] = []
    attributes: dict[str, str] = {}
    for variable in egg.variables:
        given = fields.get(variable.env_variable)
        if ctx.pelican and given is None:
            given = variable.default_value
        data["environment"][variable.env_variable] = given
        key = f"environment.{variable.env_variable}"
        rules.append((key, list(variable.rules) if ctx.pelican else variable.rules_string))
        attributes[key] = f"{variable.name} variable"
    validate_or_raise(data, rules, attributes=attributes)
    return {variable.id: _stored_string(fields.get(variable.env_variable)) for variable in egg.variables}


async def create_server(ctx: ApiContext) -> Response:
    runtime = ctx.runtime
    state = runtime.state
    data = ctx.input
    ctx.external_id = data.get("external_id") if isinstance(data.get("external_id"), str) else ctx.external_id

    cached = runtime.cache.get("store_server_rules")
    if cached is None:
        cached = pelican_rules(state) if ctx.pelican else pterodactyl_rules(state)
        runtime.cache["store_server_rules"] = cached
    rules, sometimes = cached
    validate_or_raise(data, rules, sometimes=sometimes)

    egg = state.eggs[php.db_int(data["egg"]) or 0]
    memory = php.to_int(_value(data, "limits.memory"))
    disk = php.to_int(_value(data, "limits.disk"))
    cpu = php.to_int(_value(data, "limits.cpu"))
    deploy = data.get("deploy")
    allocation_id: int | None = None
    additional: list[int] = []
    node_id: int | None = None

    image = data.get("docker_image")
    startup = data.get("startup")
    if ctx.pelican:
        image = image if image is not None else egg.first_image
        startup = startup if startup is not None else egg.startup

    if deploy is not None:
        deploy_map = deploy if isinstance(deploy, dict) else {}
        ports_raw = deploy_map.get("port_range") or []
        ports_list = list(ports_raw.values()) if isinstance(ports_raw, dict) else list(ports_raw)
        dedicated = php.truthy(deploy_map.get("dedicated_ip", False))
        if ctx.pelican:
            tags_raw = deploy_map.get("tags", deploy_map.get("locations")) or []
            tags = [php.to_string(tag) for tag in (tags_raw if isinstance(tags_raw, list) else tags_raw.values())]
            nodes = viable_nodes(state, "pelican", memory=memory, disk=disk, cpu=cpu, tags=tags)
            if not nodes:
                raise errors.display("NoViableNodeException", errors.NO_VIABLE_NODES)
            if ports_list:
                specs = parse_port_specs(ports_list)
                chosen = select_allocation(state, [n.id for n in nodes], specs, dedicated, runtime.rng)
                if chosen is None:
                    raise errors.display("NoViableAllocationException", errors.NO_VIABLE_ALLOCATIONS)
                allocation_id, node_id = chosen.id, chosen.node_id
            else:
                node_id = nodes[0].id
        else:
            locations_raw = deploy_map.get("locations") or []
            locations_list = locations_raw if isinstance(locations_raw, list) else list(locations_raw.values())
            locations = [php.to_int(location) for location in locations_list]
            nodes = viable_nodes(state, "pterodactyl", memory=memory, disk=disk, locations=locations)
            if not nodes:
                raise errors.display("NoViableNodeException", errors.NO_VIABLE_NODES)
            specs = parse_port_specs(ports_list)
            chosen = select_allocation(state, [n.id for n in nodes], specs, dedicated, runtime.rng)
            if chosen is None:
                raise errors.display("NoViableAllocationException", errors.NO_VIABLE_ALLOCATIONS)
            allocation_id, node_id = chosen.id, chosen.node_id
    else:
        allocation_id = php.db_int(_value(data, "allocation.default"))
        allocation = state.allocations.get(allocation_id) if allocation_id is not None else None
        if allocation is None:
            raise errors.generic("ErrorException")
        node_id = allocation.node_id
        extra = _value(data, "allocation.additional")
        if isinstance(extra, list | dict):
            for item in extra if isinstance(extra, list) else extra.values():
                extra_id = php.db_int(item)
                if extra_id is not None and extra_id != allocation_id:
                    additional.append(extra_id)

    variables = validate_environment(ctx, egg, data.get("environment"))

    # Persist: the creation transaction. A unique-index race surfaces here as a 500.
    external_id = data.get("external_id")
    server_id = state.next_id("servers")
    race = runtime.take_race(external_id if isinstance(external_id, str) else None)
    if race is not None:
        if race.winner and not state.external_id_taken(str(external_id)):
            # The concurrent request that won the race committed this server.
            winner_id = state.next_id("servers")
            winner = _insert(ctx, winner_id, egg, node_id, allocation_id, additional, image, startup, variables)
            runtime.installs.start(winner, reinstall=False, now=runtime.now())
        raise errors.generic("QueryException")
    server = _insert(ctx, server_id, egg, node_id, allocation_id, additional, image, startup, variables)

    result = runtime.wings.call(server.node_id, "create")
    if result.failed:
        if not (ctx.pelican and result.kind == "error"):
            # Pterodactyl rolls back on any daemon error; Pelican only on connection errors.
            state.delete_server(server.id)
            runtime.installs.cancel(server.id)
        raise daemon_error(result, runtime.flavor)
    runtime.installs.start(server, reinstall=False, now=runtime.now())
    if result.kind == "commit_then_hang":
        await asyncio.sleep(runtime.hang_for(server.node_id))
    return ctx.json(server_item(ctx.view, server, ctx.includes()), 201)


def _insert(
    ctx: ApiContext,
    server_id: int,
    egg: Egg,
    node_id: int | None,
    allocation_id: int | None,
    additional: list[int],
    image: Any,
    startup: Any,
    variables: dict[int, str],
) -> Server:
    """``ServerCreationService::createModel`` + allocations + variables, with the model casts."""
    data = ctx.input
    state = ctx.runtime.state
    if node_id is None:
        raise errors.generic("InvalidArgumentException")
    if ctx.pelican:
        oom_killer = data.get("oom_killer")
        if oom_killer is None and data.get("oom_disabled") is not None:
            oom_disabled = php.truthy(data.get("oom_disabled"))
        else:
            oom_disabled = not php.truthy(oom_killer)
    else:
        oom_raw = data.get("oom_disabled")
        oom_disabled = True if oom_raw is None else php.truthy(oom_raw)
    threads = _value(data, "limits.threads")
    uuid = new_uuid()
    while state.find_server_by_identifier(uuid[:8]) is not None:
        uuid = new_uuid()
    now = utcnow()
    external_id = data.get("external_id")
    description = data.get("description")
    server = Server(
        id=server_id,
        uuid=uuid,
        external_id=external_id if isinstance(external_id, str) else None,
        name=php.to_string(data.get("name")),
        description=php.to_string(description) if description is not None else "",
        status=STATUS_INSTALLING,
        skip_scripts=php.truthy(data.get("skip_scripts")),
        owner_id=php.db_int(data.get("user")) or 0,
        node_id=node_id,
        allocation_id=allocation_id,
        nest_id=egg.nest_id,
        egg_id=egg.id,
        memory=php.to_int(_value(data, "limits.memory")),
        swap=php.to_int(_value(data, "limits.swap")),
        disk=php.to_int(_value(data, "limits.disk")),
        io=php.to_int(_value(data, "limits.io")),
        cpu=php.to_int(_value(data, "limits.cpu")),
        threads=php.to_string(threads) if threads is not None else None,
        oom_disabled=oom_disabled,
        startup=php.to_string(startup),
        image=php.to_string(image),
        database_limit=php.to_int(_value(data, "feature_limits.databases")),
        allocation_limit=php.to_int(_value(data, "feature_limits.allocations")),
        backup_limit=php.to_int(_value(data, "feature_limits.backups")),
        start_on_completion=php.truthy(data.get("start_on_completion")),
        variables=dict(variables),
        created_at=now,
        updated_at=now,
    )
    claims = [allocation_id] if allocation_id is not None else []
    state.insert_server(server, claims + additional)
    return server
