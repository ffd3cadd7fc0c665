"""order-service's HTTP API in process (the app over ASGI, the in-memory unit of work: no database, no
broker): periods on the catalog and on orders, and the plan quote payment-service asks for a change of plan."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from order_service.adapters.catalog_file import load_catalog
from order_service.adapters.tables import OrderRow
from order_service.bootstrap import create_app
from order_service.config import DEFAULT_CATALOG
from order_service.deps import Services
from order_service.domain.order import OrderStatus
from order_service.testing import FakeOrderUnitOfWork
from spawnpoint_contracts import OrderCreated, OrderSnapshot
from spawnpoint_kit.auth import mint_token
from spawnpoint_kit.settings import DEVELOPMENT_JWT_SECRET

pytestmark = pytest.mark.unit

TOKEN = mint_token(DEVELOPMENT_JWT_SECRET, sub="alice", email="alice@example.test")
AUTH = {"Authorization": f"Bearer {TOKEN}"}
WORLD = {"game_id": "minecraft-paper", "plan_id": "standard", "server_name": "Alice world"}
ONCE = {"kind": "fixed_term", "interval": None, "interval_count": 1, "term_days": 30, "period_id": "once-30d"}


@pytest.fixture
def uow() -> FakeOrderUnitOfWork:
    return FakeOrderUnitOfWork()


@pytest.fixture
async def client(uow: FakeOrderUnitOfWork) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app()
    app.state.services = Services(catalog=load_catalog(DEFAULT_CATALOG), unit_of_work=lambda: uow, settings_check=None)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield client


async def _order(client: httpx.AsyncClient, **fields: Any) -> httpx.Response:
    headers = {**AUTH, "Idempotency-Key": str(uuid.uuid4())}
    return await client.post("/orders", json={**WORLD, **fields}, headers=headers)


async def test_the_catalog_shows_each_plans_periods_with_prices_and_the_default(client: httpx.AsyncClient) -> None:
    response = await client.get("/catalog")
    assert response.status_code == 200
    standard = next(p for p in response.json()["plans"] if p["id"] == "standard")
    assert standard["default_period"] == "once-30d"
    assert standard["price"] == {"amount": 1500, "currency": "eur"}, "the existing field: the default's price"
    assert [p["id"] for p in standard["periods"]] == ["monthly", "quarterly", "yearly", "once-30d"]
    assert standard["periods"][1] == {
        "id": "quarterly",
        "amount": 4200,
        "currency": "eur",
        "kind": "subscription",
        "interval": "month",
        "interval_count": 3,
        "term_days": None,
    }


async def test_an_order_for_a_period_shows_the_period_and_its_billing_priced_from_the_catalog(
    client: httpx.AsyncClient,
) -> None:
    placed = await _order(client, period="yearly")
    assert placed.status_code == 201, placed.text
    body = placed.json()
    assert (body["amount"], body["currency"], body["period"]) == (15000, "eur", "yearly")
    assert body["billing"] == {
        "kind": "subscription",
        "interval": "year",
        "interval_count": 1,
        "term_days": None,
        "period_id": "yearly",
    }
    read = (await client.get(f"/orders/{body['id']}", headers=AUTH)).json()
    assert read["billing"] == body["billing"] and read["server_spec"] == body["server_spec"]
    # payment-service turns this answer into the snapshot it sends on in OrderPaid (its OrderClient)
    snapshot = OrderSnapshot.model_validate({**read, "order_id": read["id"]})
    assert snapshot.billing is not None and snapshot.billing.model_dump() == body["billing"]


async def test_an_order_without_a_period_is_the_one_time_30_day_order_it_always_was(client: httpx.AsyncClient) -> None:
    placed = await _order(client)
    assert placed.status_code == 201, placed.text
    body = placed.json()
    assert (body["amount"], body["period"], body["billing"]) == (1500, "once-30d", ONCE)


@pytest.mark.parametrize("period", ["weekly", "once-7d"])
async def test_a_period_the_plan_is_not_sold_by_is_a_422_naming_period(
    client: httpx.AsyncClient, uow: FakeOrderUnitOfWork, period: str
) -> None:
    refused = await _order(client, period=period)
    assert refused.status_code == 422
    (problem,) = refused.json()["detail"]
    assert (problem["field"], problem["loc"], problem["type"]) == ("period", ["body", "period"], "catalog")
    assert not uow.fake_orders.rows


@pytest.mark.parametrize("fields", [{"period": ""}, {"period": "x" * 41}, {"amount": 1}])
async def test_a_malformed_period_or_a_client_price_is_refused(
    client: httpx.AsyncClient, fields: dict[str, Any]
) -> None:
    refused = await _order(client, **fields)
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", next(iter(fields))]


async def test_an_order_from_before_periods_reads_as_the_30_day_fixed_term(
    client: httpx.AsyncClient, uow: FakeOrderUnitOfWork
) -> None:
    placed = (await _order(client)).json()
    old = uow.fake_orders.rows[uuid.UUID(placed["id"])]
    snapshot = {k: v for k, v in old.snapshot.items() if k != "billing"}
    legacy = OrderRow(
        id=uuid.uuid4(),
        user_id="alice",
        email="alice@example.test",
        status=OrderStatus.PAID,
        game_id=old.game_id,
        plan_id=old.plan_id,
        server_name=old.server_name,
        amount=1500,
        currency="eur",
        snapshot=snapshot,
        correlation_id="c-old",
    )
    uow.orders.add(legacy)
    read = await client.get(f"/orders/{legacy.id}", headers=AUTH)
    assert read.status_code == 200
    assert (read.json()["period"], read.json()["billing"]) == ("once-30d", ONCE)


async def test_a_plan_quote_has_the_period_price_billing_and_the_complete_server_limits(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/catalog/games/minecraft-paper/plans/pro", params={"period": "monthly"})
    assert response.status_code == 200, response.text
    assert response.json() == {
        "game_id": "minecraft-paper",
        "plan_id": "pro",
        "plan_name": "Pro",
        "period": "monthly",
        "price": {"amount": 3000, "currency": "eur"},
        "billing": {
            "kind": "subscription",
            "interval": "month",
            "interval_count": 1,
            "term_days": None,
            "period_id": "monthly",
        },
        "limits": {"memory": 8192, "swap": 0, "disk": 51200, "io": 500, "cpu": 400, "threads": None},
        "feature_limits": {"databases": 2, "backups": 5, "allocations": 2},
    }
    default = (await client.get("/catalog/games/valheim/plans/standard")).json()
    assert (default["period"], default["price"]["amount"], default["billing"]) == ("once-30d", 1500, ONCE)


@pytest.mark.parametrize(
    "path",
    [
        "/catalog/games/tetris/plans/pro",
        "/catalog/games/minecraft-paper/plans/huge",
        "/catalog/games/valheim/plans/starter",  # a plan that exists, not sold with this game
    ],
)
async def test_a_quote_for_an_unknown_game_or_plan_is_a_404(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path, params={"period": "monthly"})
    assert response.status_code == 404


@pytest.mark.parametrize("period", ["weekly", ""])
async def test_a_quote_for_a_period_not_offered_is_a_422_naming_period(client: httpx.AsyncClient, period: str) -> None:
    response = await client.get("/catalog/games/minecraft-paper/plans/pro", params={"period": period})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "period"]


async def test_an_order_records_the_customers_locale_and_time_zone_for_what_they_are_told(
    client: httpx.AsyncClient, uow: FakeOrderUnitOfWork
) -> None:
    placed = await _order(client, locale="de", time_zone="Europe/Berlin")
    assert placed.status_code == 201, placed.text
    assert (placed.json()["locale"], placed.json()["time_zone"]) == ("de", "Europe/Berlin")
    row = await uow.orders.get(uuid.UUID(placed.json()["id"]))
    assert row is not None
    snapshot = OrderSnapshot.model_validate(row.snapshot)
    assert (snapshot.locale, snapshot.time_zone) == ("de", "Europe/Berlin")
    plain = await _order(client)
    assert (plain.json()["locale"], plain.json()["time_zone"]) == ("en", "UTC"), "absent: English in UTC"


async def test_an_order_stores_the_customers_name_from_the_token_and_tells_it_in_order_created(
    client: httpx.AsyncClient, uow: FakeOrderUnitOfWork
) -> None:
    named = mint_token(DEVELOPMENT_JWT_SECRET, sub="alex", email="alex@example.test", name="Alex\u202e  Doe\n")
    headers = {"Authorization": f"Bearer {named}", "Idempotency-Key": str(uuid.uuid4())}
    placed = await client.post("/orders", json=WORLD, headers=headers)
    assert placed.status_code == 201, placed.text
    assert placed.json()["customer_name"] == "Alex Doe", "control characters removed, whitespace made one space"
    order_id = uuid.UUID(placed.json()["id"])
    row = await uow.orders.get(order_id)
    assert row is not None and row.customer_name == "Alex Doe"
    [created] = [e for e in uow.events(OrderCreated) if e.order_id == order_id]
    assert created.payload.order.customer_name == "Alex Doe"
    read = await client.get(f"/orders/{order_id}", headers={"Authorization": f"Bearer {named}"})
    assert read.json()["customer_name"] == "Alex Doe"


async def test_an_order_without_a_name_in_the_token_is_placed_without_one(
    client: httpx.AsyncClient, uow: FakeOrderUnitOfWork
) -> None:
    placed = await _order(client)
    assert placed.status_code == 201, placed.text
    assert placed.json()["customer_name"] is None
    order_id = uuid.UUID(placed.json()["id"])
    [created] = [e for e in uow.events(OrderCreated) if e.order_id == order_id]
    assert created.payload.order.customer_name is None


@pytest.mark.parametrize(
    ("field", "value"), [("locale", "xx"), ("locale", "fr"), ("time_zone", "Mars/Olympus"), ("time_zone", "../etc")]
)
async def test_an_unknown_locale_or_time_zone_is_refused_with_the_field_named(
    client: httpx.AsyncClient, field: str, value: str
) -> None:
    refused = await _order(client, **{field: value})
    assert refused.status_code == 422, refused.text
    assert field in str(refused.json()["detail"])
