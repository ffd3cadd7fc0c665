"""Automatic deployment: which nodes have room, and which free allocation a server gets.

Pterodactyl (``FindViableNodesService``, ``AllocationSelectionService``): public nodes only,
optionally limited to locations; a node fits when ``sum(memory) + memory <= memory * (1 +
overallocate / 100)`` and the same for disk, so an overallocate of ``-1`` shrinks the limit
rather than lifting it. One *random* free allocation is then picked, optionally limited to
ports and ranges (a range wider than 1000 ports is refused), and with ``dedicated_ip``
excluding every node+IP pair that already has an assigned allocation.

Pelican matches nodes by tags (any shared tag), also counts CPU, and treats a negative
overallocate (or a zero capacity) as unlimited.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from typing import Any

from panel_fake import errors, php
from panel_fake.config import Flavor
from panel_fake.store import Allocation, Node, PanelState

PORT_RANGE_RE = re.compile(r"^(\d{4,5})-(\d{4,5})\n?$")
PORT_RANGE_LIMIT = 1000

PortSpec = int | tuple[int, int]


def _fits(used: int, wanted: int, capacity: int, overallocate: int) -> bool:
    return used + wanted <= capacity * (1 + overallocate / 100)


def viable_nodes(
    state: PanelState,
    flavor: Flavor,
    *,
    memory: int,
    disk: int,
    cpu: int = 0,
    locations: Sequence[int] = (),
    tags: Sequence[str] = (),
) -> list[Node]:
    """Nodes a server of this size may be deployed to, in id order."""
    found: list[Node] = []
    for node in sorted(state.nodes.values(), key=lambda candidate: candidate.id):
        if not node.public:
            continue
        used_memory, used_disk, used_cpu = state.node_usage(node.id)
        if flavor == "pterodactyl":
            if locations and node.location_id not in locations:
                continue
            if not (
                _fits(used_memory, memory, node.memory, node.memory_overallocate)
                and _fits(used_disk, disk, node.disk, node.disk_overallocate)
            ):
                continue
        else:
            if tags and not set(node.tags) & set(tags):
                continue
            checks = (
                (used_memory, memory, node.memory, node.memory_overallocate),
                (used_disk, disk, node.disk, node.disk_overallocate),
                (used_cpu, cpu, node.cpu, node.cpu_overallocate),
            )
            if any(
                capacity > 0 and overallocate >= 0 and not _fits(used, wanted, capacity, overallocate)
                for used, wanted, capacity, overallocate in checks
            ):
                continue
        found.append(node)
    return found


def _is_digit(value: Any) -> bool:
    """The panel's ``is_digit`` helper: ``ctype_digit`` of the string form, never for booleans."""
    if isinstance(value, bool):
        return False
    text = php.to_string(value)
    return text != "" and text.isascii() and text.isdigit()


def parse_port_specs(ports: Sequence[Any]) -> list[PortSpec]:
    """``AllocationSelectionService::setPorts``: digits and ``NNNN-NNNNN`` ranges, else ignored."""
    stored: list[PortSpec] = []
    for port in ports:
        if _is_digit(port):
            stored.append(int(php.to_string(port)))
        match = PORT_RANGE_RE.match(php.to_string(port)) if not isinstance(port, dict | list) else None
        if match:
            low, high = int(match.group(1)), int(match.group(2))
            if abs(high - low) > PORT_RANGE_LIMIT:
                raise errors.display("DisplayException", errors.TOO_MANY_PORTS)
            stored.append((low, high))
    return stored


def _port_matches(port: int, specs: Sequence[PortSpec]) -> bool:
    for spec in specs:
        if isinstance(spec, tuple):
            if spec[0] <= port <= spec[1]:
                return True
        elif spec == port:
            return True
    return False


def select_allocation(
    state: PanelState,
    node_ids: Sequence[int],
    ports: Sequence[PortSpec],
    dedicated: bool,
    rng: random.Random,
) -> Allocation | None:
    """One random free allocation on the given nodes matching the port and IP constraints."""
    candidates: list[int] = []
    for node_id in node_ids:
        candidates.extend(state.free_allocations.get(node_id, ()))
    candidates.sort()
    if ports:
        candidates = [aid for aid in candidates if _port_matches(state.allocations[aid].port, ports)]
    if dedicated and candidates:
        used: set[tuple[int, str]] = set()
        for node_id in node_ids:
            free = state.free_allocations.get(node_id, set())
            for allocation_id in state.node_allocations.get(node_id, []):
                if allocation_id not in free:
                    allocation = state.allocations[allocation_id]
                    used.add((allocation.node_id, allocation.ip))
        candidates = [aid for aid in candidates if (node_id_ip(state.allocations[aid])) not in used]
    if not candidates:
        return None
    return state.allocations[rng.choice(candidates)]


def node_id_ip(allocation: Allocation) -> tuple[int, str]:
    return allocation.node_id, allocation.ip
