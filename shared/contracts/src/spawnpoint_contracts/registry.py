"""Lookup from wire names to models, and the one parse function consumers use."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import Field, TypeAdapter

from .envelope import Event
from .events.notifications import NotificationSent
from .events.orders import OrderCreated, OrderExpired, OrderPaid, OrderRefunded
from .events.payments import PaymentFailed, PaymentProcessing
from .events.provisioning import (
    ProvisionFailed,
    ProvisioningReplayed,
    ProvisioningRetryScheduled,
    ServerCreated,
    ServerInstalled,
)
from .events.rentals import DesiredServerStateChanged, RentalChanged
from .events.server_lifecycle import (
    ServerActionFailed,
    ServerResized,
    ServerSuspended,
    ServerTerminated,
    ServerUnsuspended,
)

ALL_EVENTS: tuple[type[Event], ...] = (
    OrderCreated,
    OrderPaid,
    OrderExpired,
    OrderRefunded,
    PaymentProcessing,
    PaymentFailed,
    ServerCreated,
    ServerInstalled,
    ProvisionFailed,
    ProvisioningRetryScheduled,
    ProvisioningReplayed,
    RentalChanged,
    DesiredServerStateChanged,
    ServerSuspended,
    ServerUnsuspended,
    ServerResized,
    ServerTerminated,
    ServerActionFailed,
    NotificationSent,
)

AnyEvent = Annotated[
    OrderCreated
    | OrderPaid
    | OrderExpired
    | OrderRefunded
    | PaymentProcessing
    | PaymentFailed
    | ServerCreated
    | ServerInstalled
    | ProvisionFailed
    | ProvisioningRetryScheduled
    | ProvisioningReplayed
    | RentalChanged
    | DesiredServerStateChanged
    | ServerSuspended
    | ServerUnsuspended
    | ServerResized
    | ServerTerminated
    | ServerActionFailed
    | NotificationSent,
    Field(discriminator="event_type"),
]
"""Any known event, discriminated by ``event_type``."""

_ANY_EVENT: TypeAdapter[AnyEvent] = TypeAdapter(AnyEvent)

BY_ROUTING_KEY: dict[str, type[Event]] = {cls.routing_key: cls for cls in ALL_EVENTS}
BY_TYPE: dict[str, type[Event]] = {cls.model_fields["event_type"].default: cls for cls in ALL_EVENTS}


def parse_event(body: bytes | str | Mapping[str, Any]) -> Event:
    """Parse any known event from its JSON bytes (or an already decoded mapping). Raises
    ``pydantic.ValidationError`` when the body is not JSON, the type is unknown, or a field is wrong;
    consumers dead-letter such messages with the error."""
    event: Event
    if isinstance(body, Mapping):
        event = _ANY_EVENT.validate_python(body)
    else:
        event = _ANY_EVENT.validate_json(body)
    return event
