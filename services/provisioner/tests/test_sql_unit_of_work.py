"""The SQL repository and unit of work on the running PostgreSQL (a throw-away database migrated with the
provisioner's Alembic migrations; no broker: the outbox rows are read back instead)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from provisioner.adapters.eggs import EggCache
from provisioner.adapters.tables import ProvisioningRow
from provisioner.domain.panel import PanelError
from provisioner.domain.provisioning import ProvisioningStatus
from provisioner.domain.retry import RetryPolicy
from provisioner.entrypoints.consumers import desired_state_subscription, order_paid_subscription
from provisioner.queues import PROVISIONER_DESIRED_STATE, PROVISIONER_ORDER_PAID
from provisioner.service_layer.converge import ConvergeServer, new_state
from provisioner.service_layer.install_watch import InstallWatcher
from provisioner.service_layer.provision import CONSUMER, RETRY_TOKEN_HEADER, ProvisionOrderPaid
from provisioner.service_layer.unit_of_work import SqlProvisionerUnitOfWork
from provisioner.testing import FakePanel, order_paid
from spawnpoint_contracts import (
    DesiredServerState,
    DesiredServerStateChanged,
    DesiredServerStateChangedPayload,
    FeatureLimits,
    Limits,
    OrderPaid,
    RentalCause,
)
from spawnpoint_kit.db import drop_database, make_engine, make_session_factory, prepare_database
from spawnpoint_kit.messaging.delivery import Delivery
from spawnpoint_kit.messaging.inbox import InboxEntry
from spawnpoint_kit.messaging.outbox import OutboxMessage
from spawnpoint_kit.messaging.topology import Topology

pytestmark = pytest.mark.component

ALEMBIC_INI = Path(__file__).resolve().parents[1] / "alembic.ini"
TOPOLOGY = Topology("tpv.")

UnitOfWorkFactory = Callable[[], SqlProvisionerUnitOfWork]


@pytest.fixture(scope="module")
async def sessions() -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    url = f"{os.environ['SPAWNPOINT_PG_URL']}/sp_test_provisioner_{uuid.uuid4().hex[:8]}"
    await prepare_database(ALEMBIC_INI, url)
    engine = make_engine(url, pool_size=4)
    yield make_session_factory(engine)
    await engine.dispose()
    await drop_database(url)


@pytest.fixture
def unit_of_work(sessions: async_sessionmaker[AsyncSession]) -> UnitOfWorkFactory:
    return lambda: SqlProvisionerUnitOfWork(sessions, TOPOLOGY)


async def test_the_row_is_inserted_once_and_a_due_install_is_leased_by_one_round_only(
    unit_of_work: UnitOfWorkFactory,
) -> None:
    event = order_paid()
    for _ in range(2):
        async with unit_of_work() as uow:
            row = await uow.provisionings.lock_or_create(event)
            assert row.status == ProvisioningStatus.REQUESTED and row.paid_event_id == event.event_id
            await uow.commit()
    async with unit_of_work() as uow:
        locked = await uow.provisionings.lock(event.order_id)
        assert locked is not None
        locked.status = ProvisioningStatus.INSTALLING  # test setup: a recorded server
        locked.server_id, locked.next_check_at = 1, datetime.now(UTC) - timedelta(seconds=1)
        await uow.commit()

    leasing, other = unit_of_work(), unit_of_work()
    async with leasing:
        assert event.order_id in _ids(await leasing.provisionings.lease_due(limit=10, lease_seconds=60))
        async with other:
            assert event.order_id not in _ids(await other.provisionings.lease_due(limit=10, lease_seconds=60)), (
                "SKIP LOCKED"
            )
            assert await other.provisionings.count_installing() >= 1
        await leasing.commit()
    async with unit_of_work() as uow:
        assert event.order_id not in _ids(await uow.provisionings.lease_due(limit=10, lease_seconds=60)), "leased"
        got = await uow.provisionings.get(event.order_id)
        assert got is not None and got.next_check_at is not None
        assert got.next_check_at > datetime.now(UTC) + timedelta(seconds=55)
        await uow.commit()


def _ids(rows: list[ProvisioningRow]) -> list[uuid.UUID]:
    return [row.order_id for row in rows]


def _delivery(event: OrderPaid, headers: dict[str, Any] | None = None) -> Delivery:
    return Delivery.of(event, TOPOLOGY.queue_name(PROVISIONER_ORDER_PAID), headers=headers)


def _provision(panel: FakePanel) -> ProvisionOrderPaid:
    return ProvisionOrderPaid(
        panel=panel,
        eggs=EggCache(panel),
        retry=RetryPolicy(attempts=1, broker_delays=(30,)),
        topology=TOPOLOGY,
        queue=PROVISIONER_ORDER_PAID,
        install_deadline=timedelta(hours=1),
        first_install_check=timedelta(seconds=2),
    )


async def _outbox(sessions: async_sessionmaker[AsyncSession], order_id: uuid.UUID) -> list[OutboxMessage]:
    async with sessions() as session:
        rows = await session.exec(select(OutboxMessage).where(OutboxMessage.order_id == order_id))
        return list(rows.all())


async def test_a_recorded_server_commits_its_row_inbox_entry_and_server_created_together_then_is_watched(
    sessions: async_sessionmaker[AsyncSession], unit_of_work: UnitOfWorkFactory
) -> None:
    event, panel = order_paid(), FakePanel()
    subscription = order_paid_subscription(_provision(panel), unit_of_work)
    await subscription.handle(event, _delivery(event))
    await subscription.handle(event, _delivery(event))  # a redelivery: the row turns it away

    async with sessions() as session:
        row = await session.get(ProvisioningRow, event.order_id)
        inbox = (await session.exec(select(InboxEntry).where(InboxEntry.order_id == event.order_id))).all()
    assert row is not None and row.status == ProvisioningStatus.INSTALLING and row.attempts == 1
    assert [(e.consumer, e.message_key) for e in inbox] == [(CONSUMER, f"{event.event_id}:r0")]
    outbox = await _outbox(sessions, event.order_id)
    assert [(m.exchange, m.routing_key) for m in outbox] == [(TOPOLOGY.events_exchange.name, "server.created.v1")]
    assert panel.calls.count("create_server") == 1

    assert row.server_id is not None
    panel.set_status(row.server_id, None)
    async with unit_of_work() as uow:
        due = await uow.provisionings.lock(event.order_id)
        assert due is not None
        due.next_check_at = datetime.now(UTC) - timedelta(seconds=1)  # test setup: the first check is due
        await uow.commit()
    assert await InstallWatcher(unit_of_work, panel, poll_seconds=2.0).watch_round() is True
    async with sessions() as session:
        row = await session.get(ProvisioningRow, event.order_id)
    assert row is not None and row.status == ProvisioningStatus.READY
    staged = [m.routing_key for m in await _outbox(sessions, event.order_id)]
    assert sorted(staged) == ["server.created.v1", "server.installed.v1"]


async def test_a_delayed_retry_and_then_the_failure_are_staged_for_their_queues(
    sessions: async_sessionmaker[AsyncSession], unit_of_work: UnitOfWorkFactory
) -> None:
    event, panel = order_paid(), FakePanel()
    panel.always_unreachable = True
    subscription = order_paid_subscription(_provision(panel), unit_of_work)
    await subscription.handle(event, _delivery(event))
    (retry,) = [m for m in await _outbox(sessions, event.order_id) if m.exchange == ""]
    assert retry.routing_key == "tpv.provisioner.order-paid.retry.30s"

    panel.always_unreachable = False
    panel.create_failures = [(PanelError(400, "NoViableNodeException", "full"), False)]
    await subscription.handle(event, _delivery(event, {RETRY_TOKEN_HEADER: retry.headers[RETRY_TOKEN_HEADER]}))
    staged = {(m.message_type, m.routing_key) for m in await _outbox(sessions, event.order_id)}
    assert ("ProvisionFailed", "provisioning.failed.v1") in staged
    assert ("dead-letter", "tpv.provisioner.order-paid.dlq") in staged
    async with sessions() as session:
        row = await session.get(ProvisioningRow, event.order_id)
    assert row is not None and row.status == ProvisioningStatus.FAILED and row.failure_reason == "no_capacity"


# the rows on the driver connection ---------------------------------------------------------------------


async def test_a_rows_changes_are_written_on_commit_only_and_only_the_columns_that_changed(
    sessions: async_sessionmaker[AsyncSession], unit_of_work: UnitOfWorkFactory
) -> None:
    event = order_paid()
    async with unit_of_work() as uow:
        await uow.provisionings.lock_or_create(event)
        await uow.commit()
    async with unit_of_work() as uow:
        row = await uow.provisionings.lock(event.order_id)
        assert row is not None
        row.attempts = 5  # left without commit: nothing is written
    async with unit_of_work() as uow:
        row = await uow.provisionings.get(event.order_id)  # read without a lock
        assert row is not None and row.attempts == 0
        row.attempts = 2
        async with unit_of_work() as other:  # meanwhile another transaction changes another column
            locked = await other.provisionings.lock(event.order_id)
            assert locked is not None
            locked.last_error = "seen by the other transaction"
            await other.commit()
        await uow.commit()
    async with sessions() as session:
        stored = await session.get(ProvisioningRow, event.order_id)
    assert stored is not None and stored.attempts == 2, "the change committed"
    assert stored.last_error == "seen by the other transaction", "a column this transaction did not change is kept"
    assert stored.order_snapshot == event.payload.order.model_dump(mode="json")
    assert stored.status == ProvisioningStatus.REQUESTED


async def test_a_row_read_twice_in_one_transaction_is_one_object_that_sees_its_own_changes(
    unit_of_work: UnitOfWorkFactory,
) -> None:
    event = order_paid()
    async with unit_of_work() as uow:
        first = await uow.provisionings.lock_or_create(event)
        first.attempts = 3
        first.status = ProvisioningStatus.RETRY_SCHEDULED
        again = await uow.provisionings.lock(event.order_id)
        assert again is first and again.attempts == 3 and again.status == ProvisioningStatus.RETRY_SCHEDULED
        await uow.commit()
    async with unit_of_work() as uow:
        stored = await uow.provisionings.get(event.order_id)
    assert stored is not None and (stored.attempts, stored.status) == (3, ProvisioningStatus.RETRY_SCHEDULED)


async def test_a_desired_state_is_stored_with_its_json_and_locked_when_it_exists(
    unit_of_work: UnitOfWorkFactory,
) -> None:
    event = _desired_running(uuid.uuid4())
    async with unit_of_work() as uow:
        row = await uow.server_states.lock_or_create(new_state(event))
        row.waiting = "server"
        await uow.commit()
    async with unit_of_work() as uow:
        again = await uow.server_states.lock_or_create(new_state(event))
        assert again.waiting == "server" and again.desired_version == 1
        assert again.desired_limits["limits"]["memory"] == 1024
        assert DesiredServerStateChanged.model_validate(again.desired_event) == event
        assert again.applied_limits is None and again.applied_version == 0
        await uow.commit()


def _desired_running(order_id: uuid.UUID) -> DesiredServerStateChanged:
    return DesiredServerStateChanged(
        order_id=order_id,
        correlation_id="corr-1",
        producer="payment-service",
        payload=DesiredServerStateChangedPayload(
            version=1,
            state=DesiredServerState.RUNNING,
            reason=RentalCause.ACTIVATED,
            plan_id="standard",
            limits=Limits(memory=1024, swap=0, disk=2048, io=500, cpu=100),
            feature_limits=FeatureLimits(databases=0, backups=0, allocations=0),
        ),
    )


async def test_an_order_whose_running_state_waited_for_the_install_is_applied_when_the_install_ends(
    sessions: async_sessionmaker[AsyncSession], unit_of_work: UnitOfWorkFactory
) -> None:
    """The desired state arrives first (no server yet), the server is created and installs: the round that
    finds it installed records the running state as applied, without a second delivery or panel call."""
    event, panel = order_paid(), FakePanel()
    desired = _desired_running(event.order_id)
    queue = TOPOLOGY.queue_name(PROVISIONER_DESIRED_STATE)
    converge = ConvergeServer(
        panel=panel, retry=RetryPolicy(attempts=1), topology=TOPOLOGY, queue=PROVISIONER_DESIRED_STATE
    )
    await desired_state_subscription(converge, unit_of_work).handle(desired, Delivery.of(desired, queue))
    await order_paid_subscription(_provision(panel), unit_of_work).handle(event, _delivery(event))
    async with unit_of_work() as uow:
        state = await uow.server_states.get(event.order_id)
        row = await uow.provisionings.lock(event.order_id)
        assert state is not None and state.waiting == "server" and state.applied_version == 0
        assert row is not None and row.server_id is not None
        row.next_check_at = datetime.now(UTC) - timedelta(seconds=1)  # test setup: the first check is due
        await uow.commit()
    panel.set_status(row.server_id, None)
    panel.calls.clear()

    watcher = InstallWatcher(unit_of_work, panel, poll_seconds=2.0, desired_state_queue=queue)
    assert await watcher.watch_round() is True
    assert panel.calls == ["server"], "one read: the install check"
    async with unit_of_work() as uow:
        state = await uow.server_states.get(event.order_id)
        ready = await uow.provisionings.get(event.order_id)
    assert ready is not None and ready.status == ProvisioningStatus.READY
    assert state is not None and (state.applied_state, state.applied_version, state.waiting) == ("running", 1, None)
    staged = [(m.exchange, m.routing_key) for m in await _outbox(sessions, event.order_id)]
    assert ("", queue) not in staged, "nothing sent back to the desired-state queue"
    assert sorted(k for _, k in staged) == ["server.created.v1", "server.installed.v1"]
