"""Placing orders and following their payment.

``place_order`` validates the selection against the catalog, computes the price, and stores the order
(PENDING) and its OrderCreated event in one transaction together with the client's idempotency key.
``apply_payment_event`` moves an order along the state machine when payment-service reports a fact.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from spawnpoint_contracts import Event, OrderCreated, OrderCreatedPayload, OrderSnapshot
from spawnpoint_kit.auth import Principal
from spawnpoint_kit.logs import get_logger
from spawnpoint_kit.messaging import inbox
from spawnpoint_kit.messaging.outbox import stage_event
from spawnpoint_kit.messaging.topology import Topology

from ..adapters.settings_check import SettingsCheck
from ..adapters.tables import IdempotencyKeyRow, OrderRow
from ..domain.catalog import Catalog, SelectionError, resolve
from ..domain.order import OrderStatus, Trigger, next_status

log = get_logger(__name__)
PRODUCER = "order-service"
LIFECYCLE_CONSUMER = "order-service.lifecycle"


@dataclass(frozen=True)
class PlaceOrder:
    game_id: str
    plan_id: str
    server_name: str
    settings: dict[str, str]


@dataclass(frozen=True)
class PlacedOrder:
    order: OrderRow
    replayed: bool


class IdempotencyKeyReused(Exception):
    """The key was already used for a different request body."""


class MissingEmail(SelectionError):
    def __init__(self) -> None:
        super().__init__("email", "the bearer token carries no email claim; the panel account needs one")


def _fingerprint(command: PlaceOrder) -> str:
    canonical = json.dumps(
        {
            "game_id": command.game_id,
            "plan_id": command.plan_id,
            "server_name": command.server_name,
            "settings": command.settings,
        },
        sort_keys=True,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


async def place_order(
    sessions: async_sessionmaker[AsyncSession],
    topology: Topology,
    catalog: Catalog,
    *,
    principal: Principal,
    idempotency_key: str,
    command: PlaceOrder,
    correlation_id: str,
    settings_check: SettingsCheck | None = None,
) -> PlacedOrder:
    if not principal.email:
        raise MissingEmail()
    game, plan, server_name, settings, spec = resolve(
        catalog,
        game_id=command.game_id,
        plan_id=command.plan_id,
        server_name=command.server_name,
        settings=command.settings,
    )
    if settings_check is not None:
        problem = await settings_check.problem(spec, settings)
        if problem is not None:
            raise SelectionError(*problem)
    fingerprint = _fingerprint(command)
    order_id = uuid.uuid4()
    async with sessions() as session:
        claimed = await session.exec(
            insert(IdempotencyKeyRow)
            .values(
                user_id=principal.user_id,
                key=idempotency_key,
                request_hash=fingerprint,
                order_id=order_id,
                created_at=datetime.now(UTC),
            )
            .on_conflict_do_nothing(index_elements=["user_id", "key"])
            .returning(sa.literal(1))
        )
        if claimed.first() is None:
            # Someone used this key before (a concurrent insert waits for the other transaction).
            existing = (
                await session.exec(
                    select(IdempotencyKeyRow).where(
                        IdempotencyKeyRow.user_id == principal.user_id,
                        IdempotencyKeyRow.key == idempotency_key,
                    )
                )
            ).one()
            if existing.request_hash != fingerprint:
                raise IdempotencyKeyReused()
            order = await session.get(OrderRow, existing.order_id)
            assert order is not None
            return PlacedOrder(order=order, replayed=True)

        snapshot = OrderSnapshot(
            order_id=order_id,
            user_id=principal.user_id,
            email=principal.email,
            game_id=game.id,
            game_name=game.name,
            plan_id=plan.id,
            plan_name=plan.name,
            server_name=server_name,
            settings=settings,
            amount=plan.price.amount,
            currency=plan.price.currency,
            server_spec=spec,
        )
        order = OrderRow(
            id=order_id,
            user_id=principal.user_id,
            email=principal.email,
            status=OrderStatus.PENDING_PAYMENT,
            game_id=game.id,
            plan_id=plan.id,
            server_name=server_name,
            amount=plan.price.amount,
            currency=plan.price.currency,
            snapshot=snapshot.model_dump(mode="json"),
            correlation_id=correlation_id,
        )
        session.add(order)
        await stage_event(
            session,
            OrderCreated(
                order_id=order_id,
                correlation_id=correlation_id,
                producer=PRODUCER,
                payload=OrderCreatedPayload(order=snapshot),
            ),
            topology,
        )
        await session.commit()
        log.info("order placed", order_id=str(order_id), game=game.id, plan=plan.id, amount=plan.price.amount)
        return PlacedOrder(order=order, replayed=False)


async def get_order(sessions: async_sessionmaker[AsyncSession], order_id: uuid.UUID) -> OrderRow | None:
    async with sessions() as session:
        return await session.get(OrderRow, order_id)


async def apply_payment_event(sessions: async_sessionmaker[AsyncSession], event: Event) -> None:
    """Move the order along its state machine; duplicates and moves that do not apply are no-ops."""
    trigger = Trigger(event.event_type)
    async with sessions() as session:
        if not await inbox.claim(
            session,
            LIFECYCLE_CONSUMER,
            str(event.event_id),
            event_type=event.event_type,
            order_id=event.order_id,
        ):
            return
        order = (await session.exec(select(OrderRow).where(OrderRow.id == event.order_id).with_for_update())).first()
        if order is None:
            log.warning("payment event for an order this service does not know", event_type=event.event_type)
        else:
            target = next_status(order.status, trigger)
            if target is not None:
                order.status = target
                order.updated_at = datetime.now(UTC)
                session.add(order)
                log.info("order status changed", status=target.value, trigger=trigger.value)
        await session.commit()


__all__ = [
    "IdempotencyKeyReused",
    "MissingEmail",
    "PlaceOrder",
    "PlacedOrder",
    "apply_payment_event",
    "get_order",
    "place_order",
]
