"""Facts about a server after it was created: the panel was made to match the rental's desired state.

The provisioner emits each only after the panel confirmed it (a 204 and, where the panel can lie, a
read-back). ``desired_version`` names the ``DesiredServerStateChanged`` the panel now matches, so a reader
can tell which decision an outcome belongs to.
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar, Literal

from pydantic import Field

from ..envelope import Event, WireModel
from ..models import FeatureLimits, Limits


class ServerAction(StrEnum):
    SUSPEND = "suspend"
    UNSUSPEND = "unsuspend"
    RESIZE = "resize"
    TERMINATE = "terminate"


class ServerSuspendedPayload(WireModel):
    server_id: int
    desired_version: int = Field(ge=1)
    reason: str = Field(description="The rental cause that asked for it: lapsed, refunded, dispute_opened, …")


class ServerSuspended(Event):
    """The panel shows the server suspended: the customer cannot start it, their files are kept."""

    routing_key: ClassVar[str] = "server.suspended.v1"
    event_type: Literal["ServerSuspended"] = "ServerSuspended"
    event_version: Literal[1] = 1
    payload: ServerSuspendedPayload


class ServerUnsuspendedPayload(WireModel):
    server_id: int
    desired_version: int = Field(ge=1)
    reason: str


class ServerUnsuspended(Event):
    """The panel shows the server running again (not suspended)."""

    routing_key: ClassVar[str] = "server.unsuspended.v1"
    event_type: Literal["ServerUnsuspended"] = "ServerUnsuspended"
    event_version: Literal[1] = 1
    payload: ServerUnsuspendedPayload


class ServerResizedPayload(WireModel):
    server_id: int
    desired_version: int = Field(ge=1)
    plan_id: str
    limits: Limits
    feature_limits: FeatureLimits


class ServerResized(Event):
    """The panel's limits for the server now equal the plan's (read back after the change)."""

    routing_key: ClassVar[str] = "server.resized.v1"
    event_type: Literal["ServerResized"] = "ServerResized"
    event_version: Literal[1] = 1
    payload: ServerResizedPayload


class ServerTerminatedPayload(WireModel):
    server_id: int
    desired_version: int = Field(ge=1)
    already_gone: bool = Field(default=False, description="The panel had no such server any more.")
    forced: bool = Field(default=False, description="An operator chose to delete it whatever Wings said.")


class ServerTerminated(Event):
    """The server and its files are deleted from the panel."""

    routing_key: ClassVar[str] = "server.terminated.v1"
    event_type: Literal["ServerTerminated"] = "ServerTerminated"
    event_version: Literal[1] = 1
    payload: ServerTerminatedPayload


class ServerActionFailedPayload(WireModel):
    action: ServerAction
    reason: str = Field(description="suspend_failed, unsuspend_failed, resize_failed or terminate_failed.")
    message: str = Field(description="What the panel said, safe to show to an operator.")
    attempts: int = Field(ge=0)
    replayable: bool
    desired_version: int = Field(ge=1)
    server_id: int | None = None
    detail: dict[str, str] = Field(default_factory=dict)


class ServerActionFailed(Event):
    """The panel could not be made to match; the request is in the dead-letter queue when replayable."""

    routing_key: ClassVar[str] = "server.action_failed.v1"
    event_type: Literal["ServerActionFailed"] = "ServerActionFailed"
    event_version: Literal[1] = 1
    payload: ServerActionFailedPayload
