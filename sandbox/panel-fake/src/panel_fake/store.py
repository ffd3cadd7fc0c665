"""In-memory panel database: the rows the API reads and writes, plus the indexes it needs.

The real panel keeps these in MySQL; what matters for a stand-in is the observable
behaviour of the rows: ids that only grow, ``external_id`` unique case-insensitively, an
allocation claimed by at most one server, and per-node sums of memory and disk for
deployment. The indexes keep creation O(1)-ish so a benchmark can push thousands of servers.
"""

from __future__ import annotations

import uuid as uuidlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

# Server.status values (app/Models/Server.php constants).
STATUS_INSTALLING = "installing"
STATUS_INSTALL_FAILED = "install_failed"
STATUS_REINSTALL_FAILED = "reinstall_failed"
STATUS_SUSPENDED = "suspended"
STATUS_RESTORING_BACKUP = "restoring_backup"


def utcnow() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def new_uuid() -> str:
    return str(uuidlib.uuid4())


@dataclass
class User:
    id: int
    uuid: str
    username: str
    email: str
    first_name: str
    last_name: str
    external_id: str | None = None
    language: str = "en"
    timezone: str = "UTC"
    root_admin: bool = False
    use_totp: bool = False
    is_managed_externally: bool = False
    has_password: bool = False
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)


@dataclass
class ApiKey:
    """An API key. ``permissions`` maps Pterodactyl ACL resources (``servers``…) to R/W bits."""

    token: str
    user_id: int
    key_type: str  # "application" or "account" (client)
    permissions: dict[str, int] = field(default_factory=dict)
    description: str = ""

    @property
    def identifier(self) -> str:
        return self.token[:16]


@dataclass
class Location:
    id: int
    short: str
    long: str
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)


@dataclass
class Node:
    id: int
    uuid: str
    name: str
    location_id: int
    fqdn: str
    public: bool = True
    description: str | None = None
    scheme: str = "https"
    behind_proxy: bool = False
    maintenance_mode: bool = False
    memory: int = 0
    memory_overallocate: int = 0
    disk: int = 0
    disk_overallocate: int = 0
    cpu: int = 0
    cpu_overallocate: int = 0
    upload_size: int = 100
    daemon_listen: int = 8080
    daemon_sftp: int = 2022
    daemon_base: str = "/var/lib/pterodactyl/volumes"
    tags: list[str] = field(default_factory=list)
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)


@dataclass
class Allocation:
    id: int
    node_id: int
    ip: str
    port: int
    alias: str | None = None
    notes: str | None = None
    server_id: int | None = None


@dataclass
class Nest:
    id: int
    uuid: str
    author: str
    name: str
    description: str | None
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)


@dataclass
class EggVariable:
    id: int
    egg_id: int
    name: str
    description: str
    env_variable: str
    default_value: str
    user_viewable: bool
    user_editable: bool
    rules: list[str]
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)

    @property
    def rules_string(self) -> str:
        """Pterodactyl stores rules as one pipe string (Pelican as a JSON array)."""
        return "|".join(self.rules)


@dataclass
class Egg:
    id: int
    uuid: str
    nest_id: int
    author: str
    name: str
    description: str
    docker_images: dict[str, str]
    startup: str
    variables: list[EggVariable] = field(default_factory=list)
    features: list[str] | None = None
    file_denylist: list[str] = field(default_factory=list)
    config_files: Any = None
    config_startup: Any = None
    config_logs: Any = None
    config_stop: str = "stop"
    script_install: str = "#!/bin/bash\necho 'installing'\n"
    script_entry: str = "bash"
    script_container: str = "ghcr.io/pterodactyl/installers:debian"
    tags: list[str] = field(default_factory=list)
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)

    @property
    def first_image(self) -> str:
        return next(iter(self.docker_images.values()), "")


@dataclass
class Server:
    id: int
    uuid: str
    external_id: str | None
    name: str
    description: str
    status: str | None
    skip_scripts: bool
    owner_id: int
    node_id: int
    allocation_id: int | None
    nest_id: int
    egg_id: int
    memory: int
    swap: int
    disk: int
    io: int
    cpu: int
    threads: str | None
    oom_disabled: bool
    startup: str
    image: str
    # Nullable columns: a build update can store null (``feature_limits.databases: null``).
    database_limit: int | None
    allocation_limit: int | None
    backup_limit: int
    start_on_completion: bool = False
    # An active ``server_transfers`` row (``$server->transfer``); set only through the control API.
    transferring: bool = False
    variables: dict[int, str] = field(default_factory=dict)
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)
    installed_at: datetime | None = None

    @property
    def identifier(self) -> str:
        return self.uuid[:8]

    def touch(self) -> None:
        self.updated_at = utcnow()


BACKUP_ADAPTER_WINGS = "wings"
BACKUP_ADAPTER_S3 = "s3"


@dataclass
class Backup:
    """A ``backups`` row. The fake never takes backups itself: tests add them through ``/_fake``.

    ``fail_delete`` is fake-only: deleting the object from the (S3) adapter raises, which is what
    makes Pelican refuse a non-forced server deletion.
    """

    id: int
    uuid: str
    server_id: int
    name: str
    is_successful: bool = True
    is_locked: bool = False
    adapter: str = BACKUP_ADAPTER_WINGS
    bytes: int = 0
    checksum: str | None = None
    ignored_files: list[str] = field(default_factory=list)
    fail_delete: bool = False
    created_at: datetime = field(default_factory=utcnow)
    completed_at: datetime | None = None


@dataclass
class PanelState:
    """All rows, with id counters and lookup indexes."""

    users: dict[int, User] = field(default_factory=dict)
    api_keys: dict[str, ApiKey] = field(default_factory=dict)
    locations: dict[int, Location] = field(default_factory=dict)
    nodes: dict[int, Node] = field(default_factory=dict)
    allocations: dict[int, Allocation] = field(default_factory=dict)
    nests: dict[int, Nest] = field(default_factory=dict)
    eggs: dict[int, Egg] = field(default_factory=dict)
    servers: dict[int, Server] = field(default_factory=dict)
    backups: dict[int, Backup] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)
    # external_id (casefolded) -> server id; MySQL's unicode_ci collation compares like this.
    server_external_index: dict[str, int] = field(default_factory=dict)
    # node id -> allocation ids on that node, in id order
    node_allocations: dict[int, list[int]] = field(default_factory=dict)
    # node id -> server ids on that node
    node_servers: dict[int, set[int]] = field(default_factory=dict)
    # (node id, ip, port) of every allocation: the panel's unique index
    allocation_keys: set[tuple[int, str, int]] = field(default_factory=set)
    # node id -> ids of its unassigned allocations
    free_allocations: dict[int, set[int]] = field(default_factory=dict)
    # server id -> ids of its allocations
    server_allocation_ids: dict[int, set[int]] = field(default_factory=dict)
    # node id -> [memory, disk, cpu] summed over its servers
    node_totals: dict[int, list[int]] = field(default_factory=dict)
    # short identifier / uuid -> server id (client API bindings)
    identifier_index: dict[str, int] = field(default_factory=dict)
    uuid_index: dict[str, int] = field(default_factory=dict)

    # -- ids

    def next_id(self, table: str) -> int:
        value = self.counters.get(table, 0) + 1
        self.counters[table] = value
        return value

    def bump_counter(self, table: str, used: int) -> None:
        self.counters[table] = max(self.counters.get(table, 0), used)

    # -- users

    def add_user(self, user: User) -> None:
        self.users[user.id] = user
        self.bump_counter("users", user.id)

    def find_user_by_external(self, external_id: str) -> User | None:
        wanted = external_id.casefold()
        for user in self.users.values():
            if user.external_id is not None and user.external_id.casefold() == wanted:
                return user
        return None

    # -- nodes and allocations

    def add_node(self, node: Node) -> None:
        self.nodes[node.id] = node
        self.node_allocations.setdefault(node.id, [])
        self.node_servers.setdefault(node.id, set())
        self.free_allocations.setdefault(node.id, set())
        self.node_totals.setdefault(node.id, [0, 0, 0])
        self.bump_counter("nodes", node.id)

    def add_allocation(self, node_id: int, ip: str, port: int, alias: str | None = None) -> Allocation | None:
        """Add a port to a node unless that ip:port already exists (the unique index)."""
        if (node_id, ip, port) in self.allocation_keys:
            return None
        self.allocation_keys.add((node_id, ip, port))
        allocation = Allocation(id=self.next_id("allocations"), node_id=node_id, ip=ip, port=port, alias=alias)
        self.allocations[allocation.id] = allocation
        self.node_allocations.setdefault(node_id, []).append(allocation.id)
        self.free_allocations.setdefault(node_id, set()).add(allocation.id)
        return allocation

    def node_usage(self, node_id: int) -> tuple[int, int, int]:
        """Sum of memory, disk and cpu of the servers on a node."""
        totals = self.node_totals.get(node_id, [0, 0, 0])
        return totals[0], totals[1], totals[2]

    def server_allocations(self, server: Server) -> list[Allocation]:
        """A server's allocations in id order (the default one is among them)."""
        return [self.allocations[aid] for aid in sorted(self.server_allocation_ids.get(server.id, ()))]

    def find_server_by_identifier(self, identifier: str) -> Server | None:
        server_id = self.identifier_index.get(identifier)
        return self.servers.get(server_id) if server_id is not None else None

    def find_server_by_uuid(self, uuid: str) -> Server | None:
        server_id = self.uuid_index.get(uuid)
        return self.servers.get(server_id) if server_id is not None else None

    # -- servers

    def find_server_by_external(self, external_id: str) -> Server | None:
        server_id = self.server_external_index.get(external_id.casefold())
        return self.servers.get(server_id) if server_id is not None else None

    def external_id_taken(self, external_id: str, ignore_server: int | None = None) -> bool:
        server_id = self.server_external_index.get(external_id.casefold())
        return server_id is not None and server_id != ignore_server

    def insert_server(self, server: Server, allocation_ids: list[int]) -> None:
        """Insert the row, claim its allocations: the panel's creation transaction."""
        self.servers[server.id] = server
        if server.external_id is not None:
            self.server_external_index[server.external_id.casefold()] = server.id
        self.identifier_index[server.identifier] = server.id
        self.uuid_index[server.uuid] = server.id
        self.node_servers.setdefault(server.node_id, set()).add(server.id)
        totals = self.node_totals.setdefault(server.node_id, [0, 0, 0])
        totals[0] += server.memory
        totals[1] += server.disk
        totals[2] += server.cpu
        claimed = self.server_allocation_ids.setdefault(server.id, set())
        for allocation_id in allocation_ids:
            allocation = self.allocations.get(allocation_id)
            if allocation is not None and allocation.server_id is None:
                allocation.server_id = server.id
                claimed.add(allocation.id)
                self.free_allocations.get(allocation.node_id, set()).discard(allocation.id)

    def set_server_resources(self, server: Server, *, memory: int, disk: int, cpu: int) -> None:
        """Change a server's memory, disk and cpu, keeping the node sums deployment relies on right."""
        totals = self.node_totals.setdefault(server.node_id, [0, 0, 0])
        totals[0] += memory - server.memory
        totals[1] += disk - server.disk
        totals[2] += cpu - server.cpu
        server.memory, server.disk, server.cpu = memory, disk, cpu

    def assign_allocation(self, server: Server, allocation: Allocation) -> None:
        """``allocations.server_id = server`` (the caller checked it was free); notes are cleared."""
        allocation.server_id = server.id
        allocation.notes = None
        self.server_allocation_ids.setdefault(server.id, set()).add(allocation.id)
        self.free_allocations.get(allocation.node_id, set()).discard(allocation.id)

    def release_allocation(self, allocation: Allocation) -> None:
        """``allocations.server_id = null, notes = null``."""
        if allocation.server_id is not None:
            self.server_allocation_ids.get(allocation.server_id, set()).discard(allocation.id)
        allocation.server_id = None
        allocation.notes = None
        self.free_allocations.setdefault(allocation.node_id, set()).add(allocation.id)

    def server_backups(self, server_id: int) -> list[Backup]:
        return sorted((b for b in self.backups.values() if b.server_id == server_id), key=lambda b: b.id)

    def set_server_external_id(self, server: Server, external_id: str | None) -> None:
        if server.external_id is not None:
            self.server_external_index.pop(server.external_id.casefold(), None)
        server.external_id = external_id
        if external_id is not None:
            self.server_external_index[external_id.casefold()] = server.id

    def delete_server(self, server_id: int) -> Server | None:
        """Remove the row and free its allocations (the FK sets ``server_id`` to null)."""
        server = self.servers.pop(server_id, None)
        if server is None:
            return None
        if server.external_id is not None:
            indexed = self.server_external_index.get(server.external_id.casefold())
            if indexed == server.id:
                del self.server_external_index[server.external_id.casefold()]
        self.identifier_index.pop(server.identifier, None)
        self.uuid_index.pop(server.uuid, None)
        self.node_servers.get(server.node_id, set()).discard(server.id)
        totals = self.node_totals.setdefault(server.node_id, [0, 0, 0])
        totals[0] -= server.memory
        totals[1] -= server.disk
        totals[2] -= server.cpu
        for allocation_id in self.server_allocation_ids.pop(server.id, set()):
            allocation = self.allocations[allocation_id]
            allocation.server_id = None
            self.free_allocations.setdefault(allocation.node_id, set()).add(allocation.id)
        # backups.server_id is ON DELETE CASCADE: the rows go with the server, locked or not.
        for backup in self.server_backups(server.id):
            del self.backups[backup.id]
        return server
