"""Component fixtures: payment-service's real database (created by its own Alembic migrations on the
running PostgreSQL) and the Stripe stand-in as a real HTTP server in a thread, reached through the
official SDK exactly as in production. No broker: the outbox rows are the observable output."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from payment_service.adapters.stripe_gateway import StripeGateway
from payment_service.service_layer.checkout import CheckoutConfig, CheckoutService
from payment_service.service_layer.event_intake import EventIntake
from payment_service.service_layer.fulfilment import Fulfilment
from payment_service.service_layer.handlers import stripe_handlers
from payment_service.service_layer.refunds import RefundExecutor
from payment_service.service_layer.stored_events import StoredEventRunner
from payment_service.service_layer.unit_of_work import PaymentUnitOfWork, SqlPaymentUnitOfWork
from payment_service.testing import Db, Orders
from spawnpoint_kit.db import drop_database, make_engine, make_session_factory, prepare_database
from spawnpoint_kit.messaging.topology import Topology
from stripe_fake.config import FakeConfig
from stripe_fake.testing import FakeStripeControl, FakeStripeServer

ALEMBIC_INI = Path(__file__).resolve().parents[1] / "alembic.ini"
RETURN_URL = "https://shop.example.test/checkout/return?session_id={CHECKOUT_SESSION_ID}"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The SDK's async HTTPX client triggers an httpx deprecation warning on every POST; not ours."""
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning"))


@pytest.fixture(scope="session")
def database_url() -> str:
    return f"{os.environ['SPAWNPOINT_PG_URL']}/sp_test_pay_{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
async def sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    await prepare_database(ALEMBIC_INI, database_url)
    engine = make_engine(database_url, pool_size=5)
    yield make_session_factory(engine)
    await engine.dispose()
    await drop_database(database_url)


UnitOfWorkFactory = Callable[[], PaymentUnitOfWork]


@pytest.fixture
def unit_of_work(sessions: async_sessionmaker[AsyncSession], topology: Topology) -> UnitOfWorkFactory:
    """The real unit of work on the component database, as bootstrap makes it."""

    def make() -> PaymentUnitOfWork:
        return SqlPaymentUnitOfWork(sessions, topology)

    return make


@pytest.fixture
async def intake(unit_of_work: UnitOfWorkFactory) -> AsyncIterator[EventIntake]:
    """The webhook's event intake, as the endpoint uses it."""
    intake = EventIntake(unit_of_work)
    yield intake
    await intake.aclose()


@pytest.fixture(scope="session")
def stripe_server() -> Iterator[FakeStripeServer]:
    with FakeStripeServer(FakeConfig(expiry_sweep_seconds=3600)) as server:
        yield server


@pytest.fixture
def stripe_control(stripe_server: FakeStripeServer) -> Iterator[FakeStripeControl]:
    control = FakeStripeControl(stripe_server.url)
    yield control
    control.clear_faults()
    control.close()


@pytest.fixture
def gateway(stripe_server: FakeStripeServer) -> StripeGateway:
    return StripeGateway("sk_test_component", api_base=stripe_server.url, max_network_retries=0)


@pytest.fixture
def topology() -> Topology:
    return Topology(namespace="component.")


@pytest.fixture
def fulfilment(unit_of_work: UnitOfWorkFactory, gateway: StripeGateway) -> Fulfilment:
    return Fulfilment(gateway, unit_of_work)


@pytest.fixture
def runner(unit_of_work: UnitOfWorkFactory, gateway: StripeGateway, fulfilment: Fulfilment) -> StoredEventRunner:
    """The webhook worker's runner for one stored event, with the handler table bootstrap registers."""
    return StoredEventRunner(stripe_handlers(fulfilment), unit_of_work, gateway)


@pytest.fixture
def orders() -> Orders:
    return Orders()


@pytest.fixture
def checkout(
    unit_of_work: UnitOfWorkFactory, gateway: StripeGateway, fulfilment: Fulfilment, orders: Orders
) -> CheckoutService:
    config = CheckoutConfig(RETURN_URL, timedelta(minutes=60))
    return CheckoutService(unit_of_work, gateway, fulfilment, config, orders)


@pytest.fixture
def executor(unit_of_work: UnitOfWorkFactory, gateway: StripeGateway) -> RefundExecutor:
    return RefundExecutor(unit_of_work, gateway)


@pytest.fixture
def db(sessions: async_sessionmaker[AsyncSession]) -> Db:
    return Db(sessions)
