"""order-service's use cases and handler with the in-memory unit of work: no database, no broker."""

from __future__ import annotations

import hashlib
import json
import uuid

import pytest

from order_service.adapters.catalog_file import load_catalog
from order_service.config import DEFAULT_CATALOG
from order_service.domain.catalog import Catalog, SelectionError
from order_service.domain.order import OrderStatus
from order_service.service_layer.handlers import HANDLERS
from order_service.service_layer.orders import (
    IdempotencyKeyReused,
    MissingEmail,
    OrderNotFound,
    PlacedOrder,
    PlaceOrder,
    apply_payment_event,
    get_order,
    place_order,
)
from order_service.testing import FakeOrderUnitOfWork
from spawnpoint_contracts import (
    Billing,
    OrderCreated,
    OrderExpired,
    OrderExpiredPayload,
    OrderPaid,
    OrderPaidPayload,
    OrderSnapshot,
)
from spawnpoint_kit.auth import Principal
from spawnpoint_kit.messaging.delivery import Delivery
from spawnpoint_kit.messaging.handlers import Subscription
from spawnpoint_kit.messaging.specs import QueueSpec

pytestmark = pytest.mark.unit

ALICE = Principal("alice", "alice@example.test")
MALLORY = Principal("mallory", "mallory@example.test")
WORLD = PlaceOrder(game_id="minecraft-paper", plan_id="standard", server_name="Alice world", settings={})


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(DEFAULT_CATALOG)


async def _place(
    uow: FakeOrderUnitOfWork, catalog: Catalog, key: str = "key-00001", command: PlaceOrder = WORLD
) -> PlacedOrder:
    return await place_order(uow, catalog, principal=ALICE, idempotency_key=key, command=command, correlation_id="c-1")


async def test_placing_an_order_stores_it_pending_with_the_catalog_price_and_announces_it(catalog: Catalog) -> None:
    uow = FakeOrderUnitOfWork()
    placed = await _place(uow, catalog)
    assert not placed.replayed and placed.order.status == OrderStatus.PENDING_PAYMENT
    plan = catalog.plan("standard")
    assert plan is not None and placed.order.amount == plan.price.amount
    (created,) = uow.events(OrderCreated)
    assert created.order_id == placed.order.id and created.correlation_id == "c-1"
    assert created.payload.order.amount == plan.price.amount and uow.commits == 1


async def test_the_same_key_and_body_is_the_same_order_and_another_body_is_refused(catalog: Catalog) -> None:
    uow = FakeOrderUnitOfWork()
    first = await _place(uow, catalog)
    again = await _place(uow, catalog)
    assert again.replayed and again.order.id == first.order.id
    assert len(uow.events(OrderCreated)) == 1, "a replayed request announces nothing"
    with pytest.raises(IdempotencyKeyReused):
        await _place(uow, catalog, command=PlaceOrder("minecraft-paper", "pro", "Alice world", {}))
    other = await _place(uow, catalog, key="key-00002")
    assert other.order.id != first.order.id


async def test_a_bad_selection_or_a_token_without_email_stores_nothing(catalog: Catalog) -> None:
    uow = FakeOrderUnitOfWork()
    with pytest.raises(SelectionError) as bad:
        await _place(uow, catalog, command=PlaceOrder("minecraft-paper", "standard", "w", {"NOPE": "1"}))
    assert bad.value.field == "settings.NOPE"
    with pytest.raises(MissingEmail):
        await place_order(
            uow, catalog, principal=Principal("bob"), idempotency_key="key-0003", command=WORLD, correlation_id="c"
        )
    assert uow.commits == 0 and not uow.fake_orders.rows


async def test_only_the_owner_or_an_operator_reads_an_order(catalog: Catalog) -> None:
    uow = FakeOrderUnitOfWork()
    placed = await _place(uow, catalog)
    assert (await get_order(uow, placed.order.id, principal=ALICE)).id == placed.order.id
    operator = Principal("ops", roles=frozenset({"operator"}))
    assert (await get_order(uow, placed.order.id, principal=operator)).id == placed.order.id
    for who, order_id in ((MALLORY, placed.order.id), (ALICE, uuid.uuid4())):
        with pytest.raises(OrderNotFound):
            await get_order(uow, order_id, principal=who)


def _paid(snapshot: OrderSnapshot) -> OrderPaid:
    return OrderPaid(
        order_id=snapshot.order_id,
        correlation_id="c-1",
        producer="payment-service",
        payload=OrderPaidPayload(
            session_id="cs_1", payment_intent="pi_1", amount=snapshot.amount, currency=snapshot.currency, order=snapshot
        ),
    )


def _delivery(event: OrderPaid | OrderExpired) -> Delivery:
    return Delivery.of(event, "order-service.lifecycle")


async def test_payment_facts_move_the_order_forward_once_and_never_back(catalog: Catalog) -> None:
    uow = FakeOrderUnitOfWork()
    placed = await _place(uow, catalog)
    snapshot = OrderSnapshot.model_validate(placed.order.snapshot)
    subscription = Subscription(QueueSpec("order-service.lifecycle", ()), HANDLERS, unit_of_work=lambda: uow)
    paid = _paid(snapshot)
    await subscription.handle(paid, _delivery(paid))
    assert placed.order.status == OrderStatus.PAID
    late_expiry = OrderExpired(
        order_id=snapshot.order_id, correlation_id="c-1", producer="p", payload=OrderExpiredPayload(reason="late")
    )
    await subscription.handle(late_expiry, _delivery(late_expiry))
    await subscription.handle(paid, _delivery(paid))  # a redelivery: the inbox turns it away
    assert placed.order.status == OrderStatus.PAID
    assert uow.commits == 3, "the order, then one unit of work per new payment fact; the redelivery commits nothing"


async def test_a_payment_fact_for_an_unknown_order_changes_nothing() -> None:
    uow = FakeOrderUnitOfWork()
    snapshot = OrderSnapshot.model_validate(
        {
            "order_id": str(uuid.uuid4()),
            "user_id": "u",
            "email": "u@example.test",
            "game_id": "g",
            "game_name": "G",
            "plan_id": "p",
            "plan_name": "P",
            "server_name": "s",
            "amount": 100,
            "currency": "eur",
            "server_spec": {
                "egg_id": 1,
                "docker_image": "i",
                "startup": "s",
                "limits": {"memory": 1, "swap": 0, "disk": 1, "io": 500, "cpu": 100},
                "feature_limits": {"databases": 0, "backups": 0, "allocations": 0},
                "deploy": {"locations": [1]},
            },
        }
    )
    async with uow:
        await apply_payment_event(_paid(snapshot), uow)
        await uow.commit()
    assert not uow.fake_orders.rows


async def test_an_order_for_a_period_is_priced_from_the_catalog_and_records_what_it_buys(catalog: Catalog) -> None:
    uow = FakeOrderUnitOfWork()
    placed = await _place(uow, catalog, command=PlaceOrder("minecraft-paper", "standard", "w", {}, period="quarterly"))
    plan = catalog.plan("standard")
    assert plan is not None
    quarterly = Billing(kind="subscription", interval="month", interval_count=3, period_id="quarterly")
    order = placed.order
    assert (order.amount, order.currency) == (plan.periods["quarterly"].amount, "eur") == (4200, "eur")
    assert order.period_id == "quarterly" and order.billing() == quarterly
    assert (order.billing_kind, order.billing_interval, order.billing_interval_count, order.billing_term_days) == (
        "subscription",
        "month",
        3,
        None,
    )
    (created,) = uow.events(OrderCreated)
    assert created.payload.order.billing == quarterly and created.payload.order.amount == 4200
    assert OrderSnapshot.model_validate(order.snapshot).billing == quarterly, "OrderPaid carries the stored snapshot"


async def test_an_order_without_a_period_is_the_plans_default_fixed_term_as_before(catalog: Catalog) -> None:
    uow = FakeOrderUnitOfWork()
    placed = await _place(uow, catalog)
    once = Billing(kind="fixed_term", term_days=30, period_id="once-30d")
    assert placed.order.period_id == "once-30d" and placed.order.billing() == once
    assert placed.order.amount == 1500
    (created,) = uow.events(OrderCreated)
    assert created.payload.order.billing == once


async def test_a_period_the_plan_is_not_sold_by_is_refused_naming_period_and_stores_nothing(catalog: Catalog) -> None:
    uow = FakeOrderUnitOfWork()
    with pytest.raises(SelectionError) as refused:
        await _place(uow, catalog, command=PlaceOrder("minecraft-paper", "standard", "w", {}, period="weekly"))
    assert refused.value.field == "period"
    assert uow.commits == 0 and not uow.fake_orders.rows and not uow.fake_keys.rows


async def test_the_same_key_with_another_period_is_refused(catalog: Catalog) -> None:
    uow = FakeOrderUnitOfWork()
    await _place(uow, catalog)
    with pytest.raises(IdempotencyKeyReused):
        await _place(uow, catalog, command=PlaceOrder(WORLD.game_id, WORLD.plan_id, WORLD.server_name, {}, "monthly"))


async def test_a_key_stored_before_periods_existed_still_replays_its_order(catalog: Catalog) -> None:
    """A retry of a request sent before the upgrade (no period) must find the same fingerprint."""
    uow = FakeOrderUnitOfWork()
    first = await _place(uow, catalog)
    before_periods = json.dumps(
        {"game_id": WORLD.game_id, "plan_id": WORLD.plan_id, "server_name": WORLD.server_name, "settings": {}},
        sort_keys=True,
    )
    stored = uow.fake_keys.rows[(ALICE.user_id, "key-00001")]
    assert stored.request_hash == hashlib.sha256(before_periods.encode()).hexdigest()
    assert (await _place(uow, catalog)).order.id == first.order.id
