"""order-service's consumer: payment facts move the order along its state machine."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from spawnpoint_contracts import Event
from spawnpoint_kit.messaging.consumer import Delivery, Handler

from ..service_layer.orders import apply_payment_event


def lifecycle_handler(sessions: async_sessionmaker[AsyncSession]) -> Handler:
    async def handle(event: Event, _: Delivery) -> None:
        await apply_payment_event(sessions, event)

    return handle
