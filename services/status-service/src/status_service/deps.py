"""Typed dependencies of status-service's routes (``Annotated[..., Depends(...)]``, as the FastAPI template does).

``bootstrap.py`` builds one ``Services`` and puts it on the app; routes ask for what they use and never
reach into ``request.app.state`` themselves. The polling fast path (``entrypoints/polling.py``) runs before
FastAPI's routing, with the app object instead of a request: it reads the same ``Services`` through
``services_of``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request

from .config import Settings
from .service_layer.queries import StatusQueries
from .service_layer.stream_slots import StreamSlots


@dataclass(frozen=True)
class Services:
    settings: Settings
    queries: StatusQueries
    stream_slots: StreamSlots
    """The open event streams, per user and per process (``service_layer/stream_slots.py``)."""


def services_of(app: Any) -> Services:
    """The ``Services`` that ``bootstrap.build_api`` gave ``app``."""
    services: Services = app.state.services
    return services


# Async on purpose, like the kit's bearer dependency: FastAPI runs a synchronous dependency in a worker
# thread, and that hop costs more than the attribute lookup it would run.


async def get_settings(request: Request) -> Settings:
    return services_of(request.app).settings


async def get_queries(request: Request) -> StatusQueries:
    return services_of(request.app).queries


async def get_stream_slots(request: Request) -> StreamSlots:
    return services_of(request.app).stream_slots


SettingsDep = Annotated[Settings, Depends(get_settings)]
StreamSlotsDep = Annotated[StreamSlots, Depends(get_stream_slots)]
QueriesDep = Annotated[StatusQueries, Depends(get_queries)]
