"""What the provisioner sends to create a server: built from the paid order's spec and the egg.

The panel does not apply egg defaults: an omitted variable is stored as ``""``. So every variable of the
egg is sent, filled from the order's environment (customer settings over catalog defaults, resolved by
order-service) and then the egg's own ``default_value``, always as strings.
"""

from __future__ import annotations

from typing import Any, Literal

from spawnpoint_contracts import OrderSnapshot

from .panel import Egg


def environment_for(egg: Egg, wanted: dict[str, str]) -> dict[str, str]:
    return {v.env_variable: str(wanted.get(v.env_variable, v.default_value)) for v in egg.variables}


def create_body(
    order: OrderSnapshot, *, user_id: int, egg: Egg, flavor: Literal["pterodactyl", "pelican"]
) -> dict[str, Any]:
    spec = order.server_spec
    deploy: dict[str, Any] = {"dedicated_ip": spec.deploy.dedicated_ip, "port_range": list(spec.deploy.port_range)}
    if flavor == "pelican":
        deploy["tags"] = list(spec.deploy.tags)
    else:
        deploy["locations"] = list(spec.deploy.locations)
    limits: dict[str, Any] = {
        "memory": spec.limits.memory,
        "swap": spec.limits.swap,
        "disk": spec.limits.disk,
        "io": spec.limits.io,
        "cpu": spec.limits.cpu,
    }
    if spec.limits.threads is not None:
        limits["threads"] = spec.limits.threads
    return {
        "external_id": str(order.order_id),
        "name": order.server_name,
        "description": f"Spawnpoint order {order.order_id}",
        "user": user_id,
        "egg": spec.egg_id,
        "docker_image": spec.docker_image,
        "startup": spec.startup,
        "environment": environment_for(egg, spec.environment),
        "limits": limits,
        "feature_limits": {
            "databases": spec.feature_limits.databases,
            "allocations": spec.feature_limits.allocations,
            "backups": spec.feature_limits.backups,
        },
        "deploy": deploy,
        "start_on_completion": spec.start_on_completion,
        "oom_disabled": spec.oom_disabled,
    }
