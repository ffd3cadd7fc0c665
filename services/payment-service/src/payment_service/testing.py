"""Helpers for payment-service's own tests (component tests here, end-to-end tests in tests/integration):
orders shaped as order-service hands them over, and read-only views of what the service committed.

Like ``stripe_fake.testing``, it ships with the package so that tests in other folders can import it with
full typing; nothing in the service imports it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from spawnpoint_contracts import Deploy, FeatureLimits, Limits, OrderSnapshot, ServerSpec
from spawnpoint_kit.messaging.outbox import OutboxMessage

from .adapters.order_client import OrderView
from .adapters.tables import CheckoutSessionRow, PaymentRow, RefundRow, StripeEventRow


@dataclass(frozen=True)
class Orders:
    """Makes orders as order-service would hand them to payment-service."""

    def new(self, *, amount: int = 500, currency: str = "eur", user_id: str = "alice") -> OrderView:
        snapshot = OrderSnapshot(
            order_id=uuid.uuid4(),
            user_id=user_id,
            email=f"{user_id}@example.test",
            game_id="minecraft-paper",
            game_name="Minecraft (Paper)",
            plan_id="starter",
            plan_name="Starter",
            server_name="Component world",
            amount=amount,
            currency=currency,
            server_spec=ServerSpec(
                egg_id=1,
                docker_image="ghcr.io/pterodactyl/yolks:java_21",
                startup="java -jar server.jar",
                limits=Limits(memory=1024, swap=0, disk=5120, io=500, cpu=100),
                feature_limits=FeatureLimits(databases=0, backups=0, allocations=0),
                deploy=Deploy(locations=[1]),
            ),
        )
        return OrderView(snapshot=snapshot, status="pending_payment", correlation_id=str(uuid.uuid4()))


@dataclass(frozen=True)
class Db:
    """Reads what the service layer committed."""

    sessions: async_sessionmaker[AsyncSession]

    async def outbox(self, order_id: uuid.UUID, message_type: str) -> list[OutboxMessage]:
        async with self.sessions() as session:
            rows = await session.exec(
                select(OutboxMessage).where(
                    OutboxMessage.order_id == order_id, OutboxMessage.message_type == message_type
                )
            )
            return list(rows.all())

    async def payment(self, order_id: uuid.UUID) -> PaymentRow:
        async with self.sessions() as session:
            row = await session.get(PaymentRow, order_id)
            assert row is not None
            return row

    async def refunds(self, order_id: uuid.UUID) -> list[RefundRow]:
        async with self.sessions() as session:
            rows = await session.exec(select(RefundRow).where(RefundRow.order_id == order_id))
            return list(rows.all())

    async def attempts(self, order_id: uuid.UUID) -> list[CheckoutSessionRow]:
        async with self.sessions() as session:
            rows = await session.exec(
                select(CheckoutSessionRow)
                .where(CheckoutSessionRow.order_id == order_id)
                .order_by(col(CheckoutSessionRow.attempt))
            )
            return list(rows.all())

    async def stripe_events(self, order_id: uuid.UUID) -> list[StripeEventRow]:
        async with self.sessions() as session:
            rows = await session.exec(select(StripeEventRow).where(StripeEventRow.order_id == order_id))
            return list(rows.all())
