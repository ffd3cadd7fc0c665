"""What the provisioner sends to create a server: built from the paid order and the egg.

The panel does not apply egg defaults: an omitted variable is stored as ``""``. So every variable of the
egg is sent, always as a string, filled in this order: the customer's allowed settings (what they chose
at the checkout, already checked against the catalog by order-service), then the catalog's defaults for
the game, then the egg's own ``default_value``. Keys the egg does not have are dropped (the panel would
drop them too).

Limits and feature limits come from the plan; ``deploy`` names the plan's locations on Pterodactyl or
its node tags on Pelican; ``start_on_completion`` starts the server once it has installed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from spawnpoint_contracts import OrderSnapshot

from .panel import Egg, Flavor


def environment_for(egg: Egg, *, settings: Mapping[str, str], defaults: Mapping[str, str]) -> dict[str, str]:
    """Every egg variable: customer setting, else catalog default, else the egg's default, as strings."""
    filled: dict[str, str] = {}
    for variable in egg.variables:
        name = variable.env_variable
        if name in settings:
            filled[name] = str(settings[name])
        elif name in defaults:
            filled[name] = str(defaults[name])
        else:
            filled[name] = str(variable.default_value)
    return filled


def order_environment(order: OrderSnapshot, egg: Egg) -> dict[str, str]:
    return environment_for(egg, settings=order.settings, defaults=order.server_spec.environment)


def create_body(order: OrderSnapshot, *, user_id: int, egg: Egg, flavor: Flavor) -> dict[str, Any]:
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
        "environment": order_environment(order, egg),
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
