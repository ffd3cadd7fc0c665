"""Typed dependencies of notification-service's routes; only this module reads the app's state."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from .service_layer.unit_of_work import NotificationUnitOfWork


@dataclass(frozen=True)
class Services:
    unit_of_work: Callable[[], NotificationUnitOfWork]


async def get_unit_of_work(request: Request) -> NotificationUnitOfWork:
    services: Services = request.app.state.services
    return services.unit_of_work()


UnitOfWorkDep = Annotated[NotificationUnitOfWork, Depends(get_unit_of_work)]
