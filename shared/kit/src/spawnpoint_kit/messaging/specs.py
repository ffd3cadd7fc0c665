"""A consumer's queue, as data: its name, the routing keys it binds and its delivery limit.

Each service declares the queues it consumes in its own ``queues.py`` (queue names belong to their
consumer; the contracts only name exchanges and routing keys). This module imports nothing, so the
operator CLI can read every service's queue names without loading a broker library.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class QueueSpec:
    """A consumer's queue: its name (without namespace), the routing keys it binds and its limits."""

    name: str
    bindings: tuple[str, ...]
    delivery_limit: int = 5
    description: str = ""
