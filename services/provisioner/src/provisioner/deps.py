"""Typed dependencies of the provisioner's routes (``Annotated[..., Depends(...)]``, as the FastAPI template does).

``bootstrap.py`` builds one ``Services`` and puts it on the app; routes ask for what they use and never
reach into ``request.app.state`` themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from .domain.panel import Eggs


@dataclass(frozen=True)
class Services:
    eggs: Eggs
    """The panel's egg definitions as the settings check may read them: cached, and misses on a budget of
    their own (``adapters/eggs.BudgetedEggs``)."""


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def get_eggs(request: Request) -> Eggs:
    return get_services(request).eggs


EggsDep = Annotated[Eggs, Depends(get_eggs)]
