"""Typed dependencies of order-service's routes (``Annotated[..., Depends(...)]``, as the FastAPI template does).

``bootstrap.py`` builds one ``Services`` and puts it on the app; routes ask for what they use and never
reach into ``request.app.state`` themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from .adapters.settings_check import SettingsCheck
from .domain.catalog import Catalog
from .service_layer.unit_of_work import OrderUnitOfWork


@dataclass(frozen=True)
class Services:
    catalog: Catalog
    unit_of_work: Callable[[], OrderUnitOfWork]
    settings_check: SettingsCheck | None


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


# Async on purpose: FastAPI runs a synchronous dependency in a worker thread, and that hop costs more than
# the attribute lookup it would run.


async def get_catalog(request: Request) -> Catalog:
    return get_services(request).catalog


async def get_unit_of_work(request: Request) -> OrderUnitOfWork:
    return get_services(request).unit_of_work()


async def get_settings_check(request: Request) -> SettingsCheck | None:
    return get_services(request).settings_check


CatalogDep = Annotated[Catalog, Depends(get_catalog)]
UnitOfWorkDep = Annotated[OrderUnitOfWork, Depends(get_unit_of_work)]
SettingsCheckDep = Annotated[SettingsCheck | None, Depends(get_settings_check)]
