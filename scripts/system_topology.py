"""The whole system's broker topology, for what needs every service's queues at once.

Each service owns the queues it consumes (``<service>/queues.py``) and declares only those at start; the
list of all of them is ``spawnctl.system.ALL_QUEUES``. The development and test stacks declare the whole
topology before starting any service (so no event is published while a consumer's queue is missing), and
the generated documents describe it (``deploy/rabbitmq/definitions.json``, ``docs/asyncapi.json``).

    python scripts/system_topology.py definitions deploy/rabbitmq/definitions.json
    python scripts/system_topology.py asyncapi docs/asyncapi.json
"""

from __future__ import annotations

import sys
from pathlib import Path

from provisioner.queues import PROVISIONER_DESIRED_STATE, PROVISIONER_ORDER_PAID
from spawnctl.system import ALL_QUEUES
from spawnpoint_kit.messaging.specs import QueueSpec

RETRIED_QUEUES: tuple[QueueSpec, ...] = (PROVISIONER_ORDER_PAID, PROVISIONER_DESIRED_STATE)
"""The queues the provisioner feeds through delay queues (``<queue>.retry.<n>s``; ``provisioner/bootstrap.py``)."""


def retry_delays() -> tuple[int, ...]:
    """The provisioner's default ``PROVISION_RETRY_DELAYS``: the delay queues the definitions carry."""
    from provisioner.config import Settings
    from provisioner.domain.retry import parse_delays

    default = Settings.model_fields["provision_retry_delays"].default
    return tuple(parse_delays(default))


async def declare_all(broker_url: str, namespace: str) -> None:
    """Declare the exchanges and every service's queues (idempotent), before any service starts."""
    from faststream.rabbit import RabbitBroker

    from spawnpoint_kit.messaging.topology import Topology

    broker = RabbitBroker(broker_url, logger=None)
    await broker.connect()
    try:
        await Topology(namespace).declare(broker, ALL_QUEUES)
    finally:
        await broker.stop()


def render_definitions() -> str:
    from spawnpoint_kit.definitions import render

    return render(ALL_QUEUES, retries={spec: retry_delays() for spec in RETRIED_QUEUES})


def render_asyncapi() -> str:
    from spawnpoint_kit.asyncapi import render

    return render(ALL_QUEUES)


def main(argv: list[str]) -> int:
    documents = {
        "definitions": (render_definitions, "deploy/rabbitmq/definitions.json"),
        "asyncapi": (render_asyncapi, "docs/asyncapi.json"),
    }
    if not argv or argv[0] not in documents:
        print(f"usage: system_topology.py {{{','.join(documents)}}} [PATH]", file=sys.stderr)
        return 2
    render, default = documents[argv[0]]
    Path(argv[1] if len(argv) > 1 else default).write_text(render())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

__all__ = ["ALL_QUEUES", "RETRIED_QUEUES", "declare_all", "render_asyncapi", "render_definitions", "retry_delays"]
