"""Resource shapes, field for field and in the panel's key order, per flavour.

Each ``*_item`` function returns a full Fractal item (``object`` + ``attributes``) and
handles ``?include=``: known includes are rendered inside ``attributes.relationships``, an
include the key may not read becomes ``null_resource``, unknown ones are ignored.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from panel_fake import envelopes, errors
from panel_fake.auth import Caller
from panel_fake.config import Flavor
from panel_fake.store import (
    STATUS_SUSPENDED,
    Allocation,
    Egg,
    EggVariable,
    Location,
    Nest,
    Node,
    PanelState,
    Server,
    User,
)
from panel_fake.wings import is_installed


@dataclass(frozen=True)
class View:
    """What rendering needs: the data, the flavour, and who asks (for include authorization)."""

    state: PanelState
    flavor: Flavor
    caller: Caller | None
    base_url: str

    @property
    def pelican(self) -> bool:
        return self.flavor == "pelican"

    def can_include(self, resource: str) -> bool:
        return self.caller is None or self.caller.can_include(resource)


IncludeFn = Callable[[], dict[str, Any]]


def _relationships(view: View, includes: Sequence[str], available: dict[str, tuple[str, IncludeFn]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name in includes:
        entry = available.get(name)
        if entry is None or name in result:
            continue
        resource, build = entry
        result[name] = build() if view.can_include(resource) else envelopes.null_resource()
    return result


# --------------------------------------------------------------------------- allocations


def allocation_attributes(allocation: Allocation) -> dict[str, Any]:
    return {
        "id": allocation.id,
        "ip": allocation.ip,
        "alias": allocation.alias,
        "port": allocation.port,
        "notes": allocation.notes,
        "assigned": allocation.server_id is not None,
    }


def allocation_item(view: View, allocation: Allocation, includes: Sequence[str] = ()) -> dict[str, Any]:
    def include_server() -> dict[str, Any]:
        server = view.state.servers.get(allocation.server_id) if allocation.server_id is not None else None
        return server_item(view, server) if server is not None else envelopes.null_resource()

    available: dict[str, tuple[str, IncludeFn]] = {
        "node": ("nodes", lambda: node_item(view, view.state.nodes[allocation.node_id])),
        "server": ("servers", include_server),
    }
    return envelopes.item("allocation", allocation_attributes(allocation), _relationships(view, includes, available))


# --------------------------------------------------------------------------- servers


def server_environment(view: View, server: Server) -> dict[str, Any]:
    """``EnvironmentService::handle``: egg variables (stored value, else default), then panel keys."""
    env: dict[str, Any] = {}
    egg = view.state.eggs.get(server.egg_id)
    for variable in egg.variables if egg else []:
        stored = server.variables.get(variable.id)
        env[variable.env_variable] = stored if stored is not None else variable.default_value
    env["STARTUP"] = server.startup
    if not view.pelican:
        node = view.state.nodes.get(server.node_id)
        location = view.state.locations.get(node.location_id) if node else None
        env["P_SERVER_LOCATION"] = location.short if location else None
    env["P_SERVER_UUID"] = server.uuid
    if not view.pelican:
        env["P_SERVER_ALLOCATION_LIMIT"] = server.allocation_limit
    return env


def server_attributes(view: View, server: Server) -> dict[str, Any]:
    limits: dict[str, Any] = {
        "memory": server.memory,
        "swap": server.swap,
        "disk": server.disk,
        "io": server.io,
        "cpu": server.cpu,
        "threads": server.threads,
        "oom_disabled": server.oom_disabled,
    }
    if view.pelican:
        limits["oom_killer"] = not server.oom_disabled
    attributes: dict[str, Any] = {
        "id": server.id,
        "external_id": server.external_id,
        "uuid": server.uuid,
        "identifier": server.identifier,
        "name": server.name,
        "description": server.description,
        "status": server.status,
        "suspended": server.status == STATUS_SUSPENDED,
        "limits": limits,
        "feature_limits": {
            "databases": server.database_limit,
            "allocations": server.allocation_limit,
            "backups": server.backup_limit,
        },
        "user": server.owner_id,
        "node": server.node_id,
        "allocation": server.allocation_id,
    }
    if not view.pelican:
        attributes["nest"] = server.nest_id
    attributes["egg"] = server.egg_id
    attributes["container"] = {
        "startup_command": server.startup,
        "image": server.image,
        "installed": 1 if is_installed(server, view.flavor) else 0,
        "environment": server_environment(view, server),
    }
    attributes["updated_at"] = envelopes.timestamp(server.updated_at)
    attributes["created_at"] = envelopes.timestamp(server.created_at)
    return attributes


def server_variable_attributes(variable: EggVariable, server: Server, flavor: Flavor) -> dict[str, Any]:
    attributes = egg_variable_attributes(variable, flavor)
    attributes["server_value"] = server.variables.get(variable.id)
    return attributes


def server_item(view: View, server: Server, includes: Sequence[str] = ()) -> dict[str, Any]:
    state = view.state

    def include_allocations() -> dict[str, Any]:
        return envelopes.collection([allocation_item(view, a) for a in state.server_allocations(server)])

    def include_variables() -> dict[str, Any]:
        egg = state.eggs.get(server.egg_id)
        return envelopes.collection(
            [
                envelopes.item("server_variable", server_variable_attributes(variable, server, view.flavor))
                for variable in (egg.variables if egg else [])
            ]
        )

    def include_location() -> dict[str, Any]:
        node = state.nodes[server.node_id]
        return location_item(view, state.locations[node.location_id])

    available: dict[str, tuple[str, IncludeFn]] = {
        "allocations": ("allocations", include_allocations),
        "user": ("users", lambda: user_item(view, state.users[server.owner_id])),
        "subusers": ("users", lambda: envelopes.collection([])),
        "egg": ("eggs", lambda: egg_item(view, state.eggs[server.egg_id])),
        "variables": ("servers", include_variables),
        "node": ("nodes", lambda: node_item(view, state.nodes[server.node_id])),
        "databases": ("server_databases", lambda: envelopes.collection([])),
    }
    if not view.pelican:
        available["nest"] = ("nests", lambda: nest_item(view, state.nests[server.nest_id]))
        available["location"] = ("locations", include_location)
    if "transfer" in includes:
        # Listed as available, but the transformer has no includeTransfer(): PHP fatal error.
        raise errors.generic("Error")
    return envelopes.item("server", server_attributes(view, server), _relationships(view, includes, available))


# --------------------------------------------------------------------------- users


def user_attributes(view: View, user: User) -> dict[str, Any]:
    if view.pelican:
        return {
            "id": user.id,
            "external_id": user.external_id,
            "is_managed_externally": user.is_managed_externally,
            "uuid": user.uuid,
            "username": user.username,
            "email": user.email,
            "language": user.language,
            "root_admin": user.root_admin,
            "2fa_enabled": user.use_totp,
            "2fa": user.use_totp,
            "created_at": envelopes.timestamp(user.created_at),
            "updated_at": envelopes.timestamp(user.updated_at),
        }
    return {
        "id": user.id,
        "external_id": user.external_id,
        "uuid": user.uuid,
        "username": user.username,
        "email": user.email,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "language": user.language,
        "root_admin": user.root_admin,
        "2fa": user.use_totp,
        "created_at": envelopes.timestamp(user.created_at),
        "updated_at": envelopes.timestamp(user.updated_at),
    }


def user_item(view: View, user: User, includes: Sequence[str] = ()) -> dict[str, Any]:
    def include_servers() -> dict[str, Any]:
        owned = sorted((s for s in view.state.servers.values() if s.owner_id == user.id), key=lambda s: s.id)
        return envelopes.collection([server_item(view, server) for server in owned])

    available: dict[str, tuple[str, IncludeFn]] = {"servers": ("servers", include_servers)}
    return envelopes.item("user", user_attributes(view, user), _relationships(view, includes, available))


# --------------------------------------------------------------------------- locations and nodes


def location_item(view: View, location: Location, includes: Sequence[str] = ()) -> dict[str, Any]:
    state = view.state

    def include_nodes() -> dict[str, Any]:
        nodes = sorted((n for n in state.nodes.values() if n.location_id == location.id), key=lambda n: n.id)
        return envelopes.collection([node_item(view, node) for node in nodes])

    def include_servers() -> dict[str, Any]:
        node_ids = {n.id for n in state.nodes.values() if n.location_id == location.id}
        servers = sorted((s for s in state.servers.values() if s.node_id in node_ids), key=lambda s: s.id)
        return envelopes.collection([server_item(view, server) for server in servers])

    attributes = {
        "id": location.id,
        "short": location.short,
        "long": location.long,
        "updated_at": envelopes.timestamp(location.updated_at),
        "created_at": envelopes.timestamp(location.created_at),
    }
    available: dict[str, tuple[str, IncludeFn]] = {
        "nodes": ("nodes", include_nodes),
        "servers": ("servers", include_servers),
    }
    return envelopes.item("location", attributes, _relationships(view, includes, available))


def node_attributes(view: View, node: Node) -> dict[str, Any]:
    used_memory, used_disk, used_cpu = view.state.node_usage(node.id)
    attributes: dict[str, Any] = {
        "id": node.id,
        "uuid": node.uuid,
        "public": node.public,
        "name": node.name,
        "description": node.description,
    }
    if not view.pelican:
        attributes["location_id"] = node.location_id
    attributes.update(
        {
            "fqdn": node.fqdn,
            "scheme": node.scheme,
            "behind_proxy": node.behind_proxy,
            "maintenance_mode": node.maintenance_mode,
            "memory": node.memory,
            "memory_overallocate": node.memory_overallocate,
            "disk": node.disk,
            "disk_overallocate": node.disk_overallocate,
        }
    )
    if view.pelican:
        attributes["cpu"] = node.cpu
        attributes["cpu_overallocate"] = node.cpu_overallocate
    attributes.update(
        {
            "upload_size": node.upload_size,
            "daemon_listen": node.daemon_listen,
            "daemon_sftp": node.daemon_sftp,
            "daemon_base": node.daemon_base,
        }
    )
    if view.pelican:
        attributes["tags"] = list(node.tags)
    attributes["created_at"] = envelopes.timestamp(node.created_at)
    attributes["updated_at"] = envelopes.timestamp(node.updated_at)
    allocated: dict[str, int] = {"memory": used_memory, "disk": used_disk}
    if view.pelican:
        allocated["cpu"] = used_cpu
    attributes["allocated_resources"] = allocated
    return attributes


def node_item(view: View, node: Node, includes: Sequence[str] = ()) -> dict[str, Any]:
    state = view.state

    def include_allocations() -> dict[str, Any]:
        return envelopes.collection(
            [allocation_item(view, state.allocations[aid]) for aid in state.node_allocations.get(node.id, [])]
        )

    def include_servers() -> dict[str, Any]:
        servers = sorted((state.servers[sid] for sid in state.node_servers.get(node.id, ())), key=lambda s: s.id)
        return envelopes.collection([server_item(view, server) for server in servers])

    available: dict[str, tuple[str, IncludeFn]] = {
        "allocations": ("allocations", include_allocations),
        "servers": ("servers", include_servers),
    }
    if not view.pelican:
        available["location"] = ("locations", lambda: location_item(view, state.locations[node.location_id]))
    return envelopes.item("node", node_attributes(view, node), _relationships(view, includes, available))


# --------------------------------------------------------------------------- nests and eggs


def nest_item(view: View, nest: Nest, includes: Sequence[str] = ()) -> dict[str, Any]:
    state = view.state

    def include_eggs() -> dict[str, Any]:
        eggs = sorted((e for e in state.eggs.values() if e.nest_id == nest.id), key=lambda e: e.id)
        return envelopes.collection([egg_item(view, egg) for egg in eggs])

    def include_servers() -> dict[str, Any]:
        servers = sorted((s for s in state.servers.values() if s.nest_id == nest.id), key=lambda s: s.id)
        return envelopes.collection([server_item(view, server) for server in servers])

    attributes = {
        "id": nest.id,
        "uuid": nest.uuid,
        "author": nest.author,
        "name": nest.name,
        "description": nest.description,
        "created_at": envelopes.timestamp(nest.created_at),
        "updated_at": envelopes.timestamp(nest.updated_at),
    }
    available: dict[str, tuple[str, IncludeFn]] = {
        "eggs": ("eggs", include_eggs),
        "servers": ("servers", include_servers),
    }
    return envelopes.item("nest", attributes, _relationships(view, includes, available))


def egg_variable_attributes(variable: EggVariable, flavor: Flavor) -> dict[str, Any]:
    """The ``egg_variable`` model's ``toArray()`` (Laravel's microsecond timestamps)."""
    return {
        "id": variable.id,
        "egg_id": variable.egg_id,
        "name": variable.name,
        "description": variable.description,
        "env_variable": variable.env_variable,
        "default_value": variable.default_value,
        "user_viewable": variable.user_viewable,
        "user_editable": variable.user_editable,
        "rules": list(variable.rules) if flavor == "pelican" else variable.rules_string,
        "created_at": envelopes.model_timestamp(variable.created_at),
        "updated_at": envelopes.model_timestamp(variable.updated_at),
    }


def egg_attributes(view: View, egg: Egg) -> dict[str, Any]:
    config = {
        "files": egg.config_files,
        "startup": egg.config_startup,
        "stop": egg.config_stop,
        "logs": egg.config_logs,
        "file_denylist": list(egg.file_denylist),
        "extends": None,
    }
    script = {
        "privileged": True,
        "install": egg.script_install,
        "entry": egg.script_entry,
        "container": egg.script_container,
        "extends": None,
    }
    attributes: dict[str, Any] = {"id": egg.id, "uuid": egg.uuid, "name": egg.name}
    if not view.pelican:
        attributes["nest"] = egg.nest_id
    attributes["author"] = egg.author
    attributes["description"] = egg.description
    if view.pelican:
        attributes["features"] = egg.features
        attributes["tags"] = list(egg.tags)
    attributes["docker_image"] = egg.first_image
    attributes["docker_images"] = dict(egg.docker_images)
    attributes["config"] = config
    attributes["startup"] = egg.startup
    if view.pelican:
        attributes["startup_commands"] = {"Default": egg.startup}
    attributes["script"] = script
    attributes["created_at"] = envelopes.timestamp(egg.created_at)
    attributes["updated_at"] = envelopes.timestamp(egg.updated_at)
    if view.pelican:
        attributes["icon"] = None
    return attributes


def egg_item(view: View, egg: Egg, includes: Sequence[str] = ()) -> dict[str, Any]:
    state = view.state

    def include_variables() -> dict[str, Any]:
        return envelopes.collection(
            [envelopes.item("egg_variable", egg_variable_attributes(v, view.flavor)) for v in egg.variables]
        )

    def include_servers() -> dict[str, Any]:
        servers = sorted((s for s in state.servers.values() if s.egg_id == egg.id), key=lambda s: s.id)
        return envelopes.collection([server_item(view, server) for server in servers])

    available: dict[str, tuple[str, IncludeFn]] = {
        "variables": ("eggs", include_variables),
        "servers": ("servers", include_servers),
    }
    if not view.pelican:
        available["nest"] = ("nests", lambda: nest_item(view, state.nests[egg.nest_id]))
    return envelopes.item("egg", egg_attributes(view, egg), _relationships(view, includes, available))


# --------------------------------------------------------------------------- client API


def client_invocation(view: View, server: Server) -> str:
    """``StartupCommandService``: the startup line with the server's values filled in."""
    allocation = view.state.allocations.get(server.allocation_id) if server.allocation_id else None
    replacements = {
        "{{SERVER_MEMORY}}": str(server.memory),
        "{{SERVER_IP}}": allocation.ip if allocation else "",
        "{{SERVER_PORT}}": str(allocation.port) if allocation else "",
    }
    egg = view.state.eggs.get(server.egg_id)
    for variable in egg.variables if egg else []:
        stored = server.variables.get(variable.id)
        value = (stored if stored is not None else variable.default_value) if variable.user_viewable else "[hidden]"
        replacements["{{" + variable.env_variable + "}}"] = value
    command = server.startup
    for find, replace in replacements.items():
        command = command.replace(find, replace)
    return command


def client_server_item(view: View, server: Server) -> dict[str, Any]:
    """``Api\\Client\\ServerTransformer`` with its default includes (allocations, variables)."""
    state = view.state
    node = state.nodes[server.node_id]
    egg = state.eggs.get(server.egg_id)
    caller = view.caller
    is_owner = caller is not None and caller.user.id == server.owner_id
    attributes: dict[str, Any] = {
        "server_owner": is_owner,
        "identifier": server.identifier,
        "internal_id": server.id,
        "uuid": server.uuid,
        "name": server.name,
        "node": node.name,
        "is_node_under_maintenance": node.maintenance_mode,
        "sftp_details": {"ip": node.fqdn, "port": node.daemon_sftp},
        "description": server.description,
        "limits": {
            "memory": server.memory,
            "swap": server.swap,
            "disk": server.disk,
            "io": server.io,
            "cpu": server.cpu,
            "threads": server.threads,
            "oom_disabled": server.oom_disabled,
        },
        "invocation": client_invocation(view, server),
        "docker_image": server.image,
        "egg_features": egg.features if egg else None,
        "feature_limits": {
            "databases": server.database_limit,
            "allocations": server.allocation_limit,
            "backups": server.backup_limit,
        },
        "status": server.status,
        "is_suspended": server.status == STATUS_SUSPENDED,
        "is_installing": not is_installed(server, view.flavor),
        "is_transferring": server.transferring,
    }
    if view.pelican:
        attributes["limits"]["oom_killer"] = not server.oom_disabled
    allocations = [
        envelopes.item(
            "allocation",
            {
                "id": allocation.id,
                "ip": allocation.ip,
                "ip_alias": allocation.alias,
                "port": allocation.port,
                "notes": allocation.notes,
                "is_default": allocation.id == server.allocation_id,
            },
        )
        for allocation in state.server_allocations(server)
    ]
    variables = [
        envelopes.item(
            "egg_variable",
            {
                "name": variable.name,
                "description": variable.description,
                "env_variable": variable.env_variable,
                "default_value": variable.default_value,
                "server_value": server.variables.get(variable.id),
                "is_editable": variable.user_editable,
                "rules": list(variable.rules) if view.pelican else variable.rules_string,
            },
        )
        for variable in (egg.variables if egg else [])
        if variable.user_viewable
    ]
    attributes["relationships"] = {
        "allocations": envelopes.collection(allocations),
        "variables": envelopes.collection(variables),
    }
    permissions = ["*"]
    if caller is not None and caller.user.root_admin and not is_owner:
        permissions = ["*", "admin.websocket.errors", "admin.websocket.install", "admin.websocket.transfer"]
    return {
        "object": "server",
        "attributes": attributes,
        "meta": {"is_server_owner": is_owner, "user_permissions": permissions},
    }
