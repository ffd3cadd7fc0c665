"""RabbitMQ definitions (exchanges, queues with their arguments, bindings) generated from the topology.

For brokers provisioned ahead of time (``rabbitmqctl import_definitions``, or imported at boot with
``definitions.local.path``). The services declare the same topology at start, so importing is optional; the
file documents exactly what they declare. ``scripts/system_topology.py`` passes every service's queues and the
provisioner's delay queues for its default ``PROVISION_RETRY_DELAYS`` (other delays: the provisioner declares
its own at start).

A broker that imports definitions at boot creates no default user or vhost, so the document carries both: the
vhost, one application user with every permission on it, and the policies. The user's password is the
development one (``DEVELOPMENT_PASSWORD``), stored as RabbitMQ's salted SHA-256 hash; in production replace the
user (``rabbitmqctl change_password``, or the operator's own users and Secrets) — never commit a real hash.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from .messaging.specs import QueueSpec
from .messaging.topology import Topology

DEVELOPMENT_USER = "spawnpoint"
DEVELOPMENT_PASSWORD = "spawnpoint"
_SALT = b"spwn"
"""A fixed salt keeps the generated document stable (it is compared with the committed one)."""


def password_hash(password: str, salt: bytes = _SALT) -> str:
    """RabbitMQ's ``rabbit_password_hashing_sha256``: base64(salt + sha256(salt + password)), 4-byte salt."""
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def definitions(
    specs: Sequence[QueueSpec],
    topology: Topology | None = None,
    vhost: str = "/",
    retries: Mapping[QueueSpec, Sequence[int]] | None = None,
) -> dict[str, Any]:
    topology = topology or Topology()
    events, dlx = topology.events_exchange, topology.dead_letter_exchange
    exchanges: list[dict[str, Any]] = [
        {
            "name": x.name,
            "vhost": vhost,
            "type": x.type.value,
            "durable": True,
            "auto_delete": False,
            "internal": False,
            "arguments": {},
        }
        for x in (events, dlx)
    ]
    queues: list[dict[str, Any]] = []
    bindings: list[dict[str, Any]] = []
    for spec in specs:
        work, dlq = topology.work_queue(spec), topology.dead_letter_queue(spec)
        queues.append(
            {
                "name": work.name,
                "vhost": vhost,
                "durable": True,
                "auto_delete": False,
                "arguments": {"x-queue-type": "quorum", **(work.arguments or {})},
            }
        )
        queues.append(
            {
                "name": dlq.name,
                "vhost": vhost,
                "durable": True,
                "auto_delete": False,
                "arguments": {"x-queue-type": "classic"},
            }
        )
        for key in spec.bindings:
            bindings.append(
                {
                    "source": events.name,
                    "vhost": vhost,
                    "destination": work.name,
                    "destination_type": "queue",
                    "routing_key": key,
                    "arguments": {},
                }
            )
        bindings.append(
            {
                "source": dlx.name,
                "vhost": vhost,
                "destination": dlq.name,
                "destination_type": "queue",
                "routing_key": work.name,
                "arguments": {},
            }
        )
    for spec, delays in (retries or {}).items():
        for delay in delays:
            retry = topology.retry_queue(spec, delay)
            queues.append(
                {
                    "name": retry.name,
                    "vhost": vhost,
                    "durable": True,
                    "auto_delete": False,
                    "arguments": {"x-queue-type": "classic", **(retry.arguments or {})},
                }
            )
    users = [
        {
            "name": DEVELOPMENT_USER,
            "password_hash": password_hash(DEVELOPMENT_PASSWORD),
            "hashing_algorithm": "rabbit_password_hashing_sha256",
            "tags": ["management"],
            "limits": {},
        }
    ]
    permissions = [{"user": DEVELOPMENT_USER, "vhost": vhost, "configure": ".*", "write": ".*", "read": ".*"}]
    policies = [
        {
            # Spread the quorum queues' leaders over the cluster's nodes instead of the declaring client's node.
            "name": "spawnpoint-queue-leaders",
            "vhost": vhost,
            "pattern": f"^{topology.namespace}",
            "apply-to": "queues",
            "priority": 0,
            "definition": {"queue-leader-locator": "balanced"},
        }
    ]
    return {
        "vhosts": [{"name": vhost, "metadata": {"description": "Spawnpoint", "tags": []}}],
        "users": users,
        "permissions": permissions,
        "policies": policies,
        "parameters": [],
        "global_parameters": [],
        "exchanges": exchanges,
        "queues": queues,
        "bindings": bindings,
    }


def render(specs: Sequence[QueueSpec], retries: Mapping[QueueSpec, Sequence[int]] | None = None) -> str:
    return json.dumps(definitions(specs, retries=retries), indent=2, sort_keys=True) + "\n"
