"""Migration 0003 and the order row on the running PostgreSQL (a throw-away database migrated with the
service's own Alembic migrations; no broker: the outbox row is what is checked)."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from order_service.adapters.catalog_file import load_catalog
from order_service.config import DEFAULT_CATALOG
from order_service.service_layer.orders import PlaceOrder, place_order
from order_service.service_layer.unit_of_work import SqlOrderUnitOfWork
from spawnpoint_contracts import Billing
from spawnpoint_kit.auth import Principal
from spawnpoint_kit.db import (
    alembic_config,
    drop_database,
    ensure_database,
    execute_sql,
    make_engine,
    make_session_factory,
)
from spawnpoint_kit.messaging.topology import Topology

pytestmark = pytest.mark.component

ALEMBIC_INI = Path(__file__).resolve().parents[1] / "alembic.ini"
LEGACY_ORDER = uuid.uuid4()


@pytest.fixture(scope="module")
async def sessions() -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """A database with an order written before periods existed (at revision 0002), then migrated to head."""
    url = f"{os.environ['SPAWNPOINT_PG_URL']}/sp_test_orders_{uuid.uuid4().hex[:8]}"
    await ensure_database(url)
    config = alembic_config(ALEMBIC_INI, url)
    await asyncio.to_thread(command.upgrade, config, "0002")
    engine = make_engine(url, pool_size=2)
    async with engine.begin() as connection:
        await connection.execute(
            sa.text(
                "INSERT INTO orders (id, user_id, email, status, game_id, plan_id, server_name, amount, currency,"
                " snapshot, correlation_id, created_at, updated_at) VALUES (:id, 'alice', 'a@example.test', 'paid',"
                " 'minecraft-paper', 'standard', 'Old world', 1500, 'eur', '{}', 'c-old', now(), now())"
            ),
            {"id": LEGACY_ORDER},
        )
    await asyncio.to_thread(command.upgrade, config, "head")
    yield make_session_factory(engine)
    await engine.dispose()
    await drop_database(url)


async def test_an_order_from_before_the_migration_reads_as_the_30_day_fixed_term(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with SqlOrderUnitOfWork(sessions, Topology("tos.")) as uow:
        order = await uow.orders.get(LEGACY_ORDER)
    assert order is not None and order.amount == 1500
    assert order.billing() == Billing(kind="fixed_term", term_days=30, period_id="once-30d")


@pytest.mark.parametrize(
    ("period", "term_days"),
    [("monthly", None), (None, 30)],
)
async def test_a_new_order_stores_its_period_and_billing(
    sessions: async_sessionmaker[AsyncSession], period: str | None, term_days: int | None
) -> None:
    placed = await place_order(
        SqlOrderUnitOfWork(sessions, Topology("tos.")),
        load_catalog(DEFAULT_CATALOG),
        principal=Principal("alice", "alice@example.test"),
        idempotency_key=str(uuid.uuid4()),
        command=PlaceOrder("minecraft-paper", "standard", "New world", {}, period=period),
        correlation_id="c-new",
    )
    async with sessions() as session:
        row = (
            await execute_sql(
                session,
                sa.text(
                    "SELECT period_id, billing_kind, billing_interval, billing_interval_count, billing_term_days,"
                    " amount, snapshot->'billing'->>'kind' AS snapshot_kind FROM orders WHERE id = :id"
                ),
                {"id": placed.order.id},
            )
        ).one()
    if period is None:
        assert tuple(row) == ("once-30d", "fixed_term", None, 1, term_days, 1500, "fixed_term")
    else:
        assert tuple(row) == ("monthly", "subscription", "month", 1, None, 1500, "subscription")


async def test_the_table_refuses_a_billing_that_is_neither_a_subscription_nor_a_fixed_term(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session:
        with pytest.raises(sa.exc.IntegrityError, match="ck_orders_billing_kind"):
            await execute_sql(
                session,
                sa.text("UPDATE orders SET billing_kind = 'subscription' WHERE id = :id"),
                {"id": LEGACY_ORDER},
            )
