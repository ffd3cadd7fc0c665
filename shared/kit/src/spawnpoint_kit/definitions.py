"""RabbitMQ definitions (exchanges, queues with their arguments, bindings) generated from the topology.

For brokers provisioned ahead of time (``rabbitmqctl import_definitions`` or the management plugin's
``load_definitions``). The services declare the same topology at start, so importing is optional; the
file documents exactly what they declare. The provisioner's delay queues depend on its retry settings and
are declared by the provisioner itself. ``scripts/system_topology.py`` passes every service's queues.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from .messaging.specs import QueueSpec
from .messaging.topology import Topology


def definitions(specs: Sequence[QueueSpec], topology: Topology | None = None, vhost: str = "/") -> dict[str, Any]:
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
    return {"exchanges": exchanges, "queues": queues, "bindings": bindings}


def render(specs: Sequence[QueueSpec]) -> str:
    return json.dumps(definitions(specs), indent=2, sort_keys=True) + "\n"
