"""The provisioner's consumer: OrderPaid from ``provisioner.order-paid``."""

from __future__ import annotations

from spawnpoint_contracts import Event, OrderPaid
from spawnpoint_kit.messaging.consumer import DeadLetter, Delivery, Handler

from ..service_layer.provision import Provisioner


def order_paid_handler(provisioner: Provisioner) -> Handler:
    async def handle(event: Event, delivery: Delivery) -> None:
        if not isinstance(event, OrderPaid):
            raise DeadLetter("unexpected_event", f"{event.event_type} does not belong on this queue")
        await provisioner.handle_order_paid(event, delivery)

    return handle
