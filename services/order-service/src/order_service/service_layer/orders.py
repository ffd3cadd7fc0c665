"""Placing orders, reading them, and following their payment.

``place_order`` validates the selection against the catalog, chooses the period (the plan's default when
the client names none), computes the price from the catalog, and stores the order (PENDING) with what it
buys (the period and its billing) and its OrderCreated event in one unit of work together with the
client's idempotency key.
``get_order`` answers only the order's owner (or an operator): anyone else gets ``OrderNotFound``, as for
an unknown id, so existence is not leaked. ``apply_payment_event`` is the lifecycle queue's handler: it
moves an order along its state machine when payment-service reports a fact.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass

from spawnpoint_contracts import Event, OrderCreated, OrderCreatedPayload, OrderSnapshot
from spawnpoint_kit.auth import Principal
from spawnpoint_kit.logs import get_logger

from ..adapters.settings_check import SettingsCheck
from ..adapters.tables import OrderRow
from ..domain.catalog import Catalog, SelectionError, choose_period, resolve
from ..domain.order import ORDER, OrderStatus, Trigger
from .unit_of_work import OrderUnitOfWork

log = get_logger(__name__)
PRODUCER = "order-service"


@dataclass(frozen=True)
class PlaceOrder:
    game_id: str
    plan_id: str
    server_name: str
    settings: dict[str, str]
    period: str | None = None
    """The catalog's period id; None buys the plan's default period."""
    locale: str | None = None
    """The customer's language (``SUPPORTED_LOCALES``); None: English."""
    time_zone: str | None = None
    """The customer's IANA time zone; None: UTC."""


SUPPORTED_LOCALES = ("en", "de")
"""The languages the customer can be told things in (the notification service's templates)."""
DEFAULT_LOCALE = "en"
DEFAULT_TIME_ZONE = "UTC"


@dataclass(frozen=True)
class PlacedOrder:
    order: OrderRow
    replayed: bool


class IdempotencyKeyReused(Exception):
    """The key was already used for a different request body."""


class OrderNotFound(Exception):
    """No such order for this caller."""


class MissingEmail(SelectionError):
    def __init__(self) -> None:
        super().__init__("email", "the bearer token carries no email claim; the panel account needs one")


def _fingerprint(command: PlaceOrder) -> str:
    body: dict[str, object] = {
        "game_id": command.game_id,
        "plan_id": command.plan_id,
        "server_name": command.server_name,
        "settings": command.settings,
    }
    if command.period is not None:  # absent, the hash is the one keys stored before periods existed
        body["period"] = command.period
    for name in ("locale", "time_zone"):  # likewise: absent, the hash of a body from before locales
        if getattr(command, name) is not None:
            body[name] = getattr(command, name)
    canonical = json.dumps(body, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


async def place_order(
    uow: OrderUnitOfWork,
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
    period_id, period = choose_period(plan, command.period)
    billing = period.billing(period_id)
    if settings_check is not None:
        problem = await settings_check.problem(spec, settings)
        if problem is not None:
            raise SelectionError(*problem)
    fingerprint = _fingerprint(command)
    order_id = uuid.uuid4()
    async with uow:
        if not await uow.idempotency_keys.claim(
            user_id=principal.user_id, key=idempotency_key, request_hash=fingerprint, order_id=order_id
        ):
            existing = await uow.idempotency_keys.get(user_id=principal.user_id, key=idempotency_key)
            if existing.request_hash != fingerprint:
                raise IdempotencyKeyReused()
            order = await uow.orders.get(existing.order_id)
            if order is None:  # the key and its order commit together; a key without one is corrupt data
                raise RuntimeError(f"idempotency key of order {existing.order_id} has no order")
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
            secret_settings=sorted(k for k, rule in game.settings.items() if rule.secret),
            amount=period.amount,
            currency=period.currency,
            server_spec=spec,
            billing=billing,
            locale=command.locale or DEFAULT_LOCALE,
            time_zone=command.time_zone or DEFAULT_TIME_ZONE,
            customer_name=principal.name,
        )
        order = OrderRow(
            id=order_id,
            user_id=principal.user_id,
            email=principal.email,
            status=OrderStatus.PENDING_PAYMENT,
            game_id=game.id,
            plan_id=plan.id,
            server_name=server_name,
            period_id=period_id,
            billing_kind=billing.kind,
            billing_interval=billing.interval,
            billing_interval_count=billing.interval_count,
            billing_term_days=billing.term_days,
            amount=period.amount,
            currency=period.currency,
            locale=snapshot.locale,
            time_zone=snapshot.time_zone,
            customer_name=snapshot.customer_name,
            snapshot=snapshot.model_dump(mode="json"),
            correlation_id=correlation_id,
        )
        uow.orders.add(order)
        uow.publish(
            OrderCreated(
                order_id=order_id,
                correlation_id=correlation_id,
                producer=PRODUCER,
                payload=OrderCreatedPayload(order=snapshot),
            )
        )
        await uow.commit()
    log.info("order placed", order_id=str(order_id), game=game.id, plan=plan.id, period=period_id, amount=period.amount)
    return PlacedOrder(order=order, replayed=False)


async def get_order(uow: OrderUnitOfWork, order_id: uuid.UUID, *, principal: Principal) -> OrderRow:
    """The caller's order (any order for an operator); ``OrderNotFound`` otherwise."""
    async with uow.reading():  # one round trip: no BEGIN or ROLLBACK around the one SELECT
        order = await uow.orders.get(order_id)
    if order is None or (order.user_id != principal.user_id and not principal.is_operator):
        raise OrderNotFound(order_id)
    return order


async def apply_payment_event(event: Event, uow: OrderUnitOfWork) -> None:
    """Move the order along its state machine; moves that do not apply are no-ops (the inbox already
    turned duplicates away)."""
    trigger = Trigger(event.event_type)
    order = await uow.orders.lock(event.order_id)
    if order is None:
        log.warning("payment event for an order this service does not know", event_type=event.event_type)
        return
    if ORDER.allows(order.status, trigger):
        ORDER.transition(order, trigger)
        log.info("order status changed", status=str(order.status), trigger=trigger.value)


__all__ = [
    "DEFAULT_LOCALE",
    "DEFAULT_TIME_ZONE",
    "SUPPORTED_LOCALES",
    "IdempotencyKeyReused",
    "MissingEmail",
    "OrderNotFound",
    "PlaceOrder",
    "PlacedOrder",
    "apply_payment_event",
    "get_order",
    "place_order",
]
