"""Events of one order for notification-service's unit tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from spawnpoint_contracts import (
    Deploy,
    FeatureLimits,
    Limits,
    OrderPaid,
    OrderPaidPayload,
    OrderSnapshot,
    RentalCause,
    RentalChanged,
    RentalChangedPayload,
    RentalPhase,
    ServerInstalled,
    ServerInstalledPayload,
    ServerSpec,
)

SECRET = "hunter2-very-secret"


class Story:
    def __init__(self, *, locale: str = "en", time_zone: str = "UTC", email: str = "alice@example.test") -> None:
        self.order_id = uuid.uuid4()
        self.locale, self.time_zone, self.email = locale, time_zone, email
        self.clock = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)

    def tick(self) -> datetime:
        self.clock += timedelta(seconds=1)
        return self.clock

    def snapshot(self) -> OrderSnapshot:
        return OrderSnapshot(
            order_id=self.order_id,
            user_id="alice",
            email=self.email,
            game_id="valheim",
            game_name="Valheim",
            plan_id="standard",
            plan_name="Standard",
            server_name="Alice world",
            settings={"SERVER_PASS": SECRET, "WORLD_NAME": "Dedicated"},
            secret_settings=["SERVER_PASS"],
            amount=1500,
            currency="eur",
            server_spec=ServerSpec(
                egg_id=3,
                docker_image="ghcr.io/parkervcp/games:valheim",
                startup="./valheim -password {{SERVER_PASS}}",
                environment={"SERVER_PASS": SECRET},
                limits=Limits(memory=2048, swap=0, disk=10240, io=500, cpu=200),
                feature_limits=FeatureLimits(databases=0, backups=1, allocations=1),
                deploy=Deploy(locations=[1]),
            ),
            locale=self.locale,
            time_zone=self.time_zone,
        )

    def paid(self) -> OrderPaid:
        return OrderPaid(
            order_id=self.order_id,
            correlation_id="corr-1",
            producer="payment-service",
            occurred_at=self.tick(),
            payload=OrderPaidPayload(session_id="cs_test_1", amount=1500, currency="eur", order=self.snapshot()),
        )

    def installed(self) -> ServerInstalled:
        return ServerInstalled(
            order_id=self.order_id,
            correlation_id="corr-1",
            producer="provisioner",
            occurred_at=self.tick(),
            payload=ServerInstalledPayload(server_id=7, identifier="abcd1234"),
        )

    def rental(self, cause: RentalCause, phase: RentalPhase = RentalPhase.PAST_DUE, version: int = 2) -> RentalChanged:
        return RentalChanged(
            order_id=self.order_id,
            correlation_id="corr-1",
            producer="payment-service",
            occurred_at=self.tick(),
            payload=RentalChangedPayload(
                version=version,
                phase=phase,
                cause=cause,
                kind="subscription",
                plan_id="standard",
                period_id="monthly",
                next_payment_attempt=datetime(2026, 12, 3, 10, 0, tzinfo=UTC),
                grace_until=datetime(2026, 12, 9, 10, 0, tzinfo=UTC),
                terminate_at=datetime(2026, 12, 30, 10, 0, tzinfo=UTC),
                amount=1500,
                currency="eur",
                detail={"dispute_id": "dp_1"} if cause == RentalCause.DISPUTE_OPENED else {},
            ),
        )
