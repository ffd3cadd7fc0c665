"""Facts about the game server: created on the panel, installed, or failed; retries and replays."""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar, Literal

from pydantic import Field

from ..envelope import Event, WireModel


class FailureReason(StrEnum):
    """Why provisioning failed. Stable codes: frontends, refund policy and alerts switch on them."""

    NO_CAPACITY = "no_capacity"
    INVALID_EGG_VARIABLES = "invalid_egg_variables"
    INVALID_REQUEST = "invalid_request"
    PANEL_AUTH = "panel_auth"
    PANEL_UNAVAILABLE = "panel_unavailable"
    UNKNOWN_EGG = "unknown_egg"
    INSTALL_FAILED = "install_failed"
    INSTALL_TIMEOUT = "install_timeout"
    MALFORMED_MESSAGE = "malformed_message"
    INTERNAL_ERROR = "internal_error"


class ServerCreatedPayload(WireModel):
    server_id: int = Field(description="The panel's numeric server id.")
    server_uuid: str
    identifier: str = Field(description="The panel's short id, used in /server/<identifier> URLs.")
    external_id: str
    panel_user_id: int
    node_id: int | None = None
    adopted: bool = Field(default=False, description="True when an existing server was found, not created.")


class ServerCreated(Event):
    """The server exists on the panel and is installing. It is not ready for the customer yet."""

    routing_key: ClassVar[str] = "server.created.v1"
    event_type: Literal["ServerCreated"] = "ServerCreated"
    event_version: Literal[1] = 1
    payload: ServerCreatedPayload


class ServerInstalledPayload(WireModel):
    server_id: int
    identifier: str


class ServerInstalled(Event):
    """The panel reports the installation finished: the server is ready to connect to."""

    routing_key: ClassVar[str] = "server.installed.v1"
    event_type: Literal["ServerInstalled"] = "ServerInstalled"
    event_version: Literal[1] = 1
    payload: ServerInstalledPayload


class ProvisionFailedPayload(WireModel):
    reason: FailureReason
    message: str = Field(description="A human explanation, safe to show to an operator.")
    attempts: int = Field(ge=0)
    replayable: bool = Field(description="Whether an operator replay (after fixing the cause) can help.")
    server_id: int | None = None
    detail: dict[str, str] = Field(default_factory=dict)


class ProvisionFailed(Event):
    """Provisioning stopped for this attempt; the message is in the dead-letter queue when replayable."""

    routing_key: ClassVar[str] = "provisioning.failed.v1"
    event_type: Literal["ProvisionFailed"] = "ProvisionFailed"
    event_version: Literal[1] = 1
    payload: ProvisionFailedPayload


class ProvisioningRetryScheduledPayload(WireModel):
    attempt: int = Field(ge=1)
    delay_seconds: float = Field(ge=0)
    reason: FailureReason
    message: str


class ProvisioningRetryScheduled(Event):
    """A transient failure: the request will be retried later through the broker."""

    routing_key: ClassVar[str] = "provisioning.retry_scheduled.v1"
    event_type: Literal["ProvisioningRetryScheduled"] = "ProvisioningRetryScheduled"
    event_version: Literal[1] = 1
    payload: ProvisioningRetryScheduledPayload


class ProvisioningReplayedPayload(WireModel):
    replay_count: int = Field(ge=1)
    source_queue: str


class ProvisioningReplayed(Event):
    """An operator replayed the dead-lettered request; provisioning starts again."""

    routing_key: ClassVar[str] = "provisioning.replayed.v1"
    event_type: Literal["ProvisioningReplayed"] = "ProvisioningReplayed"
    event_version: Literal[1] = 1
    payload: ProvisioningReplayedPayload
