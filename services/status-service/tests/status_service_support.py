"""Test helpers: an order's events, built the way the services build them, at chosen times.

``OrderStory`` makes one order's events with times given in seconds after a fixed start, so a test can
say "the provisioner's clock is 5 s behind" by passing an earlier time. Every event is a real contract
model that survives a JSON round trip, exactly as it arrives from the broker.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from spawnpoint_contracts import (
    Deploy,
    DesiredServerState,
    DesiredServerStateChanged,
    DesiredServerStateChangedPayload,
    Event,
    FailureReason,
    FeatureLimits,
    Limits,
    OrderCreated,
    OrderCreatedPayload,
    OrderExpired,
    OrderExpiredPayload,
    OrderPaid,
    OrderPaidPayload,
    OrderRefunded,
    OrderRefundedPayload,
    OrderSnapshot,
    PaymentFailed,
    PaymentFailedPayload,
    PaymentProcessing,
    PaymentProcessingPayload,
    ProvisionFailed,
    ProvisionFailedPayload,
    ProvisioningReplayed,
    ProvisioningReplayedPayload,
    ProvisioningRetryScheduled,
    ProvisioningRetryScheduledPayload,
    RentalCause,
    RentalChanged,
    RentalChangedPayload,
    RentalPhase,
    ServerAction,
    ServerActionFailed,
    ServerActionFailedPayload,
    ServerCreated,
    ServerCreatedPayload,
    ServerInstalled,
    ServerInstalledPayload,
    ServerResized,
    ServerResizedPayload,
    ServerSpec,
    ServerSuspended,
    ServerSuspendedPayload,
    ServerTerminated,
    ServerTerminatedPayload,
    ServerUnsuspended,
    ServerUnsuspendedPayload,
    parse_event,
)

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def on(month: int, day: int, year: int = 2026) -> datetime:
    """A day at midnight UTC (rental dates)."""
    return datetime(year, month, day, tzinfo=UTC)


LIMITS = Limits(memory=2048, swap=0, disk=10240, io=500, cpu=200)
FEATURES = FeatureLimits(databases=0, backups=1, allocations=1)


def redelivered(event: Event) -> Event:
    """The same event as a second delivery would carry it (parsed again from its bytes)."""
    return parse_event(event.to_json_bytes())


class OrderStory:
    """Builds the events of one order."""

    def __init__(self, user_id: str = "alice", order_id: uuid.UUID | None = None) -> None:
        self.order_id = order_id or uuid.uuid4()
        self.user_id = user_id
        self.correlation_id = f"corr-{self.order_id.hex[:8]}"
        self.paid_event: OrderPaid | None = None

    def snapshot(self) -> OrderSnapshot:
        return OrderSnapshot(
            order_id=self.order_id,
            user_id=self.user_id,
            email=f"{self.user_id}@example.test",
            game_id="minecraft-paper",
            game_name="Minecraft (Paper)",
            plan_id="starter",
            plan_name="Starter",
            server_name="Alice world",
            amount=500,
            currency="eur",
            server_spec=ServerSpec(
                egg_id=3,
                docker_image="ghcr.io/pterodactyl/yolks:java_21",
                startup="java -jar server.jar",
                limits=Limits(memory=2048, swap=0, disk=10240, io=500, cpu=200),
                feature_limits=FeatureLimits(databases=0, backups=1, allocations=1),
                deploy=Deploy(locations=[1]),
            ),
        )

    def _common(self, seconds: float, producer: str, cause: Event | None = None) -> dict[str, object]:
        return {
            "order_id": self.order_id,
            "occurred_at": at(seconds),
            "correlation_id": self.correlation_id,
            "causation_id": cause.event_id if cause is not None else None,
            "producer": producer,
        }

    def _cause(self) -> Event | None:
        return self.paid_event

    def created(self, t: float = 0) -> OrderCreated:
        return OrderCreated(**self._common(t, "order-service"), payload=OrderCreatedPayload(order=self.snapshot()))

    def processing(self, t: float = 5) -> PaymentProcessing:
        return PaymentProcessing(
            **self._common(t, "payment-service"), payload=PaymentProcessingPayload(session_id="cs_test_1")
        )

    def paid(self, t: float = 10) -> OrderPaid:
        event = OrderPaid(
            **self._common(t, "payment-service"),
            payload=OrderPaidPayload(session_id="cs_test_1", amount=500, currency="eur", order=self.snapshot()),
        )
        self.paid_event = event
        return event

    def payment_failed(self, t: float = 10) -> PaymentFailed:
        return PaymentFailed(**self._common(t, "payment-service"), payload=PaymentFailedPayload(session_id="cs_test_1"))

    def expired(self, t: float = 3600) -> OrderExpired:
        return OrderExpired(**self._common(t, "payment-service"), payload=OrderExpiredPayload(session_id="cs_test_1"))

    def refunded(self, t: float = 100, reason: str = "provisioning_failed") -> OrderRefunded:
        return OrderRefunded(
            **self._common(t, "payment-service"),
            payload=OrderRefundedPayload(refund_id="re_test_1", amount=500, currency="eur", reason=reason),
        )

    def retry(self, t: float = 12, attempt: int = 1) -> ProvisioningRetryScheduled:
        return ProvisioningRetryScheduled(
            **self._common(t, "provisioner", self._cause()),
            payload=ProvisioningRetryScheduledPayload(
                attempt=attempt, delay_seconds=5, reason=FailureReason.PANEL_UNAVAILABLE, message="panel answered 503"
            ),
        )

    def server_created(self, t: float = 15, identifier: str = "a1b2c3d4", *, adopted: bool = False) -> ServerCreated:
        return ServerCreated(
            **self._common(t, "provisioner", self._cause()),
            payload=ServerCreatedPayload(
                server_id=42,
                server_uuid=f"{identifier}-0000-4000-8000-000000000000",
                identifier=identifier,
                external_id=str(self.order_id),
                panel_user_id=7,
                node_id=1,
                adopted=adopted,
            ),
        )

    def installed(self, t: float = 60, identifier: str = "a1b2c3d4") -> ServerInstalled:
        return ServerInstalled(
            **self._common(t, "provisioner", self._cause()),
            payload=ServerInstalledPayload(server_id=42, identifier=identifier),
        )

    def failed(
        self,
        t: float = 20,
        reason: FailureReason = FailureReason.NO_CAPACITY,
        message: str = "NoViableNodeException: no node has 2048 MiB free (node wings-03)",
    ) -> ProvisionFailed:
        return ProvisionFailed(
            **self._common(t, "provisioner", self._cause()),
            payload=ProvisionFailedPayload(reason=reason, message=message, attempts=3, replayable=True),
        )

    def replayed(self, t: float = 1000, replay_count: int = 1) -> ProvisioningReplayed:
        return ProvisioningReplayed(
            **self._common(t, "provisioner", self._cause()),
            payload=ProvisioningReplayedPayload(replay_count=replay_count, source_queue="provisioner.order-paid.dlq"),
        )

    # the rental (payment-service) and what the panel was made to show (provisioner) -------------------

    def rental(
        self,
        version: int,
        phase: RentalPhase,
        cause: RentalCause,
        *,
        t: float | None = None,
        kind: str = "subscription",
        **fields: object,
    ) -> RentalChanged:
        """A RentalChanged; ``t`` defaults to one day per version after the order."""
        payload: dict[str, object] = {
            "version": version,
            "phase": phase,
            "cause": cause,
            "kind": kind,
            "plan_id": "starter",
            "period_id": "monthly" if kind == "subscription" else "once-30d",
            "subscription_id": "sub_test_1" if kind == "subscription" else None,
            **fields,
        }
        return RentalChanged(
            **self._common(86400.0 * version if t is None else t, "payment-service"),
            payload=RentalChangedPayload.model_validate(payload),
        )

    def desired(
        self, version: int, state: DesiredServerState, reason: RentalCause, *, t: float | None = None
    ) -> DesiredServerStateChanged:
        return DesiredServerStateChanged(
            **self._common(86400.0 * version if t is None else t, "payment-service"),
            payload=DesiredServerStateChangedPayload(
                version=version, state=state, reason=reason, plan_id="starter", limits=LIMITS, feature_limits=FEATURES
            ),
        )

    def suspended(self, desired_version: int, *, t: float | None = None, reason: str = "lapsed") -> ServerSuspended:
        return ServerSuspended(
            **self._panel_time(desired_version, t),
            payload=ServerSuspendedPayload(server_id=42, desired_version=desired_version, reason=reason),
        )

    def unsuspended(
        self, desired_version: int, *, t: float | None = None, reason: str = "recovered"
    ) -> ServerUnsuspended:
        return ServerUnsuspended(
            **self._panel_time(desired_version, t),
            payload=ServerUnsuspendedPayload(server_id=42, desired_version=desired_version, reason=reason),
        )

    def resized(self, desired_version: int, *, t: float | None = None, memory: int = 4096) -> ServerResized:
        return ServerResized(
            **self._panel_time(desired_version, t),
            payload=ServerResizedPayload(
                server_id=42,
                desired_version=desired_version,
                plan_id="pro",
                limits=LIMITS.model_copy(update={"memory": memory}),
                feature_limits=FEATURES,
            ),
        )

    def terminated(self, desired_version: int, *, t: float | None = None) -> ServerTerminated:
        return ServerTerminated(
            **self._panel_time(desired_version, t),
            payload=ServerTerminatedPayload(server_id=42, desired_version=desired_version),
        )

    def action_failed(
        self,
        action: ServerAction,
        desired_version: int,
        *,
        t: float | None = None,
        message: str = "Wings daemon on node wings-03 answered 502 (DaemonConnectionException)",
    ) -> ServerActionFailed:
        return ServerActionFailed(
            **self._panel_time(desired_version, t),
            payload=ServerActionFailedPayload(
                action=action,
                reason=f"{action.value}_failed",
                message=message,
                attempts=5,
                replayable=True,
                desired_version=desired_version,
                server_id=42,
                detail={"node": "wings-03"},
            ),
        )

    def _panel_time(self, desired_version: int, t: float | None) -> dict[str, object]:
        return self._common(86400.0 * desired_version + 60 if t is None else t, "provisioner")
