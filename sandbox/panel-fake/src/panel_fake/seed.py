"""The data the fake panel starts with, and loading an alternative seed from a JSON file.

The ids here are a contract: the project's catalog refers to egg 1 (Paper), location 1 and
node 1, and the tests use the seeded keys. They are documented in the README; change them
only together with it. A seed file has the same shape as :func:`default_seed` returns.
"""

from __future__ import annotations

import json
import uuid as uuidlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from panel_fake.config import APPLICATION_PREFIX, CLIENT_PREFIX, Flavor, default_app_key
from panel_fake.store import (
    ApiKey,
    Egg,
    EggVariable,
    Location,
    Nest,
    Node,
    PanelState,
    User,
)

SEED_TIME = datetime(2024, 10, 24, 12, 0, 0, tzinfo=UTC)
_NAMESPACE = uuidlib.UUID("6f1c1f43-3a55-4d4e-9a36-7a1f0b0c5e11")

ALL_RESOURCES = (
    "servers",
    "nodes",
    "allocations",
    "users",
    "locations",
    "nests",
    "eggs",
    "database_hosts",
    "server_databases",
)

PAPER_STARTUP = (
    "java -Xms128M -XX:MaxRAMPercentage=95.0 -Dterminal.jline=false -Dterminal.ansi=true -jar {{SERVER_JARFILE}}"
)
VANILLA_STARTUP = "java -Xms128M -XX:MaxRAMPercentage=95.0 -jar {{SERVER_JARFILE}}"
VALHEIM_STARTUP = (
    './valheim_server.x86_64 -nographics -batchmode -name "{{SERVER_NAME}}" -port {{SERVER_PORT}} '
    '-world "{{WORLD_NAME}}" -password "{{SERVER_PASS}}" -public 1'
)
JAVA_IMAGES = {
    "Java 21": "ghcr.io/pterodactyl/yolks:java_21",
    "Java 17": "ghcr.io/pterodactyl/yolks:java_17",
    "Java 11": "ghcr.io/pterodactyl/yolks:java_11",
    "Java 8": "ghcr.io/pterodactyl/yolks:java_8",
}
JARFILE_RULE = r"required|regex:/^([\w\d._-]+)(\.jar)$/"


def seed_uuid(kind: str, ident: int | str) -> str:
    """Stable uuids, so a restarted fake shows the same node and egg uuids."""
    return str(uuidlib.uuid5(_NAMESPACE, f"{kind}:{ident}"))


def _key(prefix: str, body: str) -> str:
    """A 48-character key: 16-character identifier plus 32-character secret."""
    return (prefix + body).ljust(48, "0")[:48]


def seed_keys(flavor: Flavor) -> dict[str, str]:
    """The seeded tokens by role, for docs and tests."""
    app, client = APPLICATION_PREFIX[flavor], CLIENT_PREFIX[flavor]
    return {
        "admin_application": default_app_key(flavor),
        "read_servers_application": _key(app, "readonlyservers"),
        "customer_application": _key(app, "customerappkey"),
        "admin_client": _key(client, "spawnpointadmin"),
        "customer_client": _key(client, "customerclient"),
    }


def _paper_variables() -> list[dict[str, Any]]:
    return [
        {
            "id": 1,
            "name": "Minecraft Version",
            "description": (
                "The version of minecraft to download. Leave at latest to always get the latest version. "
                "Invalid versions will default to latest."
            ),
            "env_variable": "MINECRAFT_VERSION",
            "default_value": "latest",
            "user_viewable": True,
            "user_editable": True,
            "rules": "nullable|string|max:20",
        },
        {
            "id": 2,
            "name": "Server Jar File",
            "description": "The name of the server jarfile to run the server with.",
            "env_variable": "SERVER_JARFILE",
            "default_value": "server.jar",
            "user_viewable": True,
            "user_editable": True,
            "rules": JARFILE_RULE,
        },
        {
            "id": 3,
            "name": "Download Path",
            "description": (
                "A URL to use to download a server.jar rather than the ones in the install script. "
                "This is not user viewable."
            ),
            "env_variable": "DL_PATH",
            "default_value": "",
            "user_viewable": False,
            "user_editable": False,
            "rules": "nullable|string",
        },
        {
            "id": 4,
            "name": "Build Number",
            "description": (
                "The build number for the paper release. Leave at latest to always get the latest version. "
                "Invalid versions will default to latest."
            ),
            "env_variable": "BUILD_NUMBER",
            "default_value": "latest",
            "user_viewable": True,
            "user_editable": True,
            "rules": "required|string|max:20",
        },
    ]


def default_seed(flavor: Flavor) -> dict[str, Any]:
    """The default seed, as the JSON a seed file would contain."""
    keys = seed_keys(flavor)
    minecraft_config = {
        "files": {
            "server.properties": {
                "parser": "properties",
                "find": {
                    "server-ip": "0.0.0.0",
                    "server-port": "{{server.build.default.port}}",
                    "query.port": "{{server.build.default.port}}",
                },
            }
        },
        "startup": {"done": ")! For help, type "},
        "logs": {},
        "stop": "stop",
    }
    return {
        "users": [
            {
                "id": 1,
                "username": "admin",
                "email": "admin@spawnpoint.test",
                "first_name": "Spawn",
                "last_name": "Admin",
                "root_admin": True,
            },
            {
                "id": 2,
                "username": "customer",
                "email": "customer@spawnpoint.test",
                "first_name": "Casey",
                "last_name": "Customer",
                "root_admin": False,
            },
        ],
        "api_keys": [
            {
                "token": keys["admin_application"],
                "user_id": 1,
                "type": "application",
                "permissions": "all",
                "primary": True,
                "description": "Spawnpoint provisioner (all permissions)",
            },
            {
                "token": keys["read_servers_application"],
                "user_id": 1,
                "type": "application",
                "permissions": {"servers": 1},
                "description": "read-only servers (r_servers=1)",
            },
            {
                "token": keys["customer_application"],
                "user_id": 2,
                "type": "application",
                "permissions": "all",
                "description": "application key of a non-admin user",
            },
            {"token": keys["admin_client"], "user_id": 1, "type": "client", "description": "admin client key"},
            {
                "token": keys["customer_client"],
                "user_id": 2,
                "type": "client",
                "description": "customer (non-admin) client key",
            },
        ],
        "locations": [
            {"id": 1, "short": "us1", "long": "United States 1"},
            {"id": 2, "short": "eu1", "long": "Europe 1"},
        ],
        "nodes": [
            {
                "id": 1,
                "name": "us1-node1",
                "location_id": 1,
                "fqdn": "node1.us1.spawnpoint.test",
                "public": True,
                "memory": 4_194_304,
                "memory_overallocate": 0,
                "disk": 16_777_216,
                "disk_overallocate": 0,
                "cpu": 0,
                "cpu_overallocate": 0,
                "tags": ["game"],
                "allocations": [{"ip": "10.0.0.5", "ports": "25565-26564"}],
            },
            {
                "id": 2,
                "name": "eu1-node1",
                "location_id": 2,
                "fqdn": "node1.eu1.spawnpoint.test",
                "public": True,
                "memory": 4_194_304,
                "memory_overallocate": 0,
                "disk": 16_777_216,
                "disk_overallocate": 0,
                "cpu": 0,
                "cpu_overallocate": 0,
                "tags": ["eu"],
                "allocations": [{"ip": "10.0.0.6", "ports": "25565-26564"}],
            },
        ],
        "nests": [
            {
                "id": 1,
                "name": "Minecraft",
                "author": "support@pterodactyl.io",
                "description": (
                    "Minecraft - the classic game from Mojang. With support for Vanilla MC, Spigot, and many others!"
                ),
                "eggs": [
                    {
                        "id": 1,
                        "name": "Paper",
                        "author": "parker@pterodactyl.io",
                        "description": (
                            "High performance Spigot fork that aims to fix gameplay and mechanics inconsistencies."
                        ),
                        "docker_images": dict(JAVA_IMAGES),
                        "startup": PAPER_STARTUP,
                        "features": ["eula", "java_version", "pid_limit"],
                        "tags": ["minecraft"],
                        "config": minecraft_config,
                        "variables": _paper_variables(),
                    },
                    {
                        "id": 2,
                        "name": "Vanilla Minecraft",
                        "author": "support@pterodactyl.io",
                        "description": (
                            "Minecraft is a game about placing blocks and going on adventures. "
                            "This is the vanilla server from Mojang."
                        ),
                        "docker_images": dict(JAVA_IMAGES),
                        "startup": VANILLA_STARTUP,
                        "features": ["eula", "java_version", "pid_limit"],
                        "tags": ["minecraft"],
                        "config": minecraft_config,
                        "variables": [
                            {
                                "id": 5,
                                "name": "Server Version",
                                "description": "The version of Minecraft Vanilla to install (latest for the newest).",
                                "env_variable": "VANILLA_VERSION",
                                "default_value": "latest",
                                "user_viewable": True,
                                "user_editable": True,
                                "rules": "required|string|max:20",
                            },
                            {
                                "id": 6,
                                "name": "Server Jar File",
                                "description": "The name of the server jarfile to run the server with.",
                                "env_variable": "SERVER_JARFILE",
                                "default_value": "server.jar",
                                "user_viewable": True,
                                "user_editable": True,
                                "rules": JARFILE_RULE,
                            },
                        ],
                    },
                ],
            },
            {
                "id": 2,
                "name": "Valheim",
                "author": "spawnpoint@spawnpoint.test",
                "description": "Valheim dedicated server.",
                "eggs": [
                    {
                        "id": 3,
                        "name": "Valheim",
                        "author": "spawnpoint@spawnpoint.test",
                        "description": "A brutal exploration and survival game for 1-10 players.",
                        "docker_images": {"Valheim": "ghcr.io/ptero-eggs/games:valheim"},
                        "startup": VALHEIM_STARTUP,
                        "features": [],
                        "tags": ["valheim"],
                        "config": {"files": {}, "startup": {"done": "Game server connected"}, "logs": {}, "stop": "^C"},
                        "variables": [
                            {
                                "id": 7,
                                "name": "Server Name",
                                "description": "The name shown in the server browser.",
                                "env_variable": "SERVER_NAME",
                                "default_value": "Spawnpoint Valheim",
                                "user_viewable": True,
                                "user_editable": True,
                                "rules": "required|string|max:64",
                            },
                            {
                                "id": 8,
                                "name": "World Name",
                                "description": "The world file to load or create.",
                                "env_variable": "WORLD_NAME",
                                "default_value": "Dedicated",
                                "user_viewable": True,
                                "user_editable": True,
                                "rules": "required|alpha_dash|max:32",
                            },
                            {
                                "id": 9,
                                "name": "Server Password",
                                "description": "Password to join; at least 5 characters. Empty for none.",
                                "env_variable": "SERVER_PASS",
                                "default_value": "",
                                "user_viewable": True,
                                "user_editable": True,
                                "rules": "nullable|string|min:5",
                            },
                        ],
                    }
                ],
            },
        ],
    }


def load_seed_file(path: str) -> dict[str, Any]:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"seed file {path} must contain a JSON object")
    return data


def parse_ports(spec: Any) -> list[int]:
    """``"25565-26564"``, ``"25565,25566"``, ``25565`` or a list of those."""
    if isinstance(spec, list):
        return [port for item in spec for port in parse_ports(item)]
    if isinstance(spec, int):
        return [spec]
    ports: list[int] = []
    for part in str(spec).split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            low, high = (int(bound) for bound in part.split("-", 1))
            ports.extend(range(min(low, high), max(low, high) + 1))
        else:
            ports.append(int(part))
    return ports


def _rules(raw: Any) -> list[str]:
    if isinstance(raw, list):
        return [str(rule) for rule in raw]
    from panel_fake.validation import explode_rules

    return [rule for rule in explode_rules(str(raw)) if isinstance(rule, str)]


def build_state(seed: dict[str, Any], flavor: Flavor, app_key: str | None) -> PanelState:
    """Turn a seed document into a fresh :class:`PanelState`."""
    state = PanelState()
    for raw in seed.get("users", []):
        user = User(
            id=int(raw["id"]),
            uuid=str(raw.get("uuid") or seed_uuid("user", raw["id"])),
            username=str(raw["username"]).lower(),
            email=str(raw["email"]),
            first_name=str(raw.get("first_name", "")),
            last_name=str(raw.get("last_name", "")),
            external_id=raw.get("external_id"),
            language=str(raw.get("language", "en")),
            root_admin=bool(raw.get("root_admin", False)),
            use_totp=bool(raw.get("use_totp", False)),
            has_password=True,
            created_at=SEED_TIME,
            updated_at=SEED_TIME,
        )
        state.add_user(user)

    primary_overridden = False
    for raw in seed.get("api_keys", []):
        token = str(raw["token"])
        if raw.get("primary") and app_key:
            token = app_key
            primary_overridden = True
        permissions_raw = raw.get("permissions", {})
        if permissions_raw == "all":
            permissions = dict.fromkeys(ALL_RESOURCES, 3)
        else:
            permissions = {str(name): int(bits) for name, bits in dict(permissions_raw).items()}
        key_type = "application" if raw.get("type", "application") == "application" else "account"
        state.api_keys[token] = ApiKey(
            token=token,
            user_id=int(raw["user_id"]),
            key_type=key_type,
            permissions=permissions,
            description=str(raw.get("description", "")),
        )
    if app_key and not primary_overridden:
        admin = next((user for user in state.users.values() if user.root_admin), None)
        if admin is not None:
            state.api_keys[app_key] = ApiKey(
                token=app_key,
                user_id=admin.id,
                key_type="application",
                permissions=dict.fromkeys(ALL_RESOURCES, 3),
                description="configured admin key",
            )

    for raw in seed.get("locations", []):
        location = Location(
            id=int(raw["id"]),
            short=str(raw["short"]),
            long=str(raw.get("long", raw["short"])),
            created_at=SEED_TIME,
            updated_at=SEED_TIME,
        )
        state.locations[location.id] = location
        state.bump_counter("locations", location.id)

    for raw in seed.get("nodes", []):
        node = Node(
            id=int(raw["id"]),
            uuid=str(raw.get("uuid") or seed_uuid("node", raw["id"])),
            name=str(raw["name"]),
            location_id=int(raw.get("location_id", 1)),
            fqdn=str(raw.get("fqdn", f"node{raw['id']}.spawnpoint.test")),
            public=bool(raw.get("public", True)),
            description=raw.get("description"),
            memory=int(raw.get("memory", 0)),
            memory_overallocate=int(raw.get("memory_overallocate", 0)),
            disk=int(raw.get("disk", 0)),
            disk_overallocate=int(raw.get("disk_overallocate", 0)),
            cpu=int(raw.get("cpu", 0)),
            cpu_overallocate=int(raw.get("cpu_overallocate", 0)),
            maintenance_mode=bool(raw.get("maintenance_mode", False)),
            tags=[str(tag) for tag in raw.get("tags", [])],
            daemon_base=("/var/lib/pelican/volumes" if flavor == "pelican" else "/var/lib/pterodactyl/volumes"),
            created_at=SEED_TIME,
            updated_at=SEED_TIME,
        )
        state.add_node(node)
        for block in raw.get("allocations", []):
            for port in parse_ports(block.get("ports", [])):
                state.add_allocation(node.id, str(block["ip"]), port, block.get("alias"))

    for raw_nest in seed.get("nests", []):
        nest = Nest(
            id=int(raw_nest["id"]),
            uuid=str(raw_nest.get("uuid") or seed_uuid("nest", raw_nest["id"])),
            author=str(raw_nest.get("author", "support@pterodactyl.io")),
            name=str(raw_nest["name"]),
            description=raw_nest.get("description"),
            created_at=SEED_TIME,
            updated_at=SEED_TIME,
        )
        state.nests[nest.id] = nest
        state.bump_counter("nests", nest.id)
        for raw_egg in raw_nest.get("eggs", []):
            config = raw_egg.get("config", {})
            egg = Egg(
                id=int(raw_egg["id"]),
                uuid=str(raw_egg.get("uuid") or seed_uuid("egg", raw_egg["id"])),
                nest_id=nest.id,
                author=str(raw_egg.get("author", nest.author)),
                name=str(raw_egg["name"]),
                description=str(raw_egg.get("description", "")),
                docker_images={str(k): str(v) for k, v in dict(raw_egg.get("docker_images", {})).items()},
                startup=str(raw_egg.get("startup", "")),
                features=raw_egg.get("features"),
                tags=[str(tag) for tag in raw_egg.get("tags", [])],
                config_files=config.get("files", {}),
                config_startup=config.get("startup", {}),
                config_logs=config.get("logs", {}),
                config_stop=str(config.get("stop", "stop")),
                created_at=SEED_TIME,
                updated_at=SEED_TIME,
            )
            for raw_var in raw_egg.get("variables", []):
                variable_id = int(raw_var["id"]) if "id" in raw_var else state.next_id("egg_variables")
                state.bump_counter("egg_variables", variable_id)
                egg.variables.append(
                    EggVariable(
                        id=variable_id,
                        egg_id=egg.id,
                        name=str(raw_var["name"]),
                        description=str(raw_var.get("description", "")),
                        env_variable=str(raw_var["env_variable"]),
                        default_value=str(raw_var.get("default_value", "")),
                        user_viewable=bool(raw_var.get("user_viewable", True)),
                        user_editable=bool(raw_var.get("user_editable", True)),
                        rules=_rules(raw_var.get("rules", "")),
                        created_at=SEED_TIME,
                        updated_at=SEED_TIME,
                    )
                )
            egg.variables.sort(key=lambda variable: variable.id)
            state.eggs[egg.id] = egg
            state.bump_counter("eggs", egg.id)
    return state
