"""The drift reconciler's adapters for real: the records read from PostgreSQL (a throw-away database
migrated with the provisioner's migrations) and sent back through the SQL unit of work, and the panel's
server list paged over HTTP from the stand-in, in both flavours."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from panel_fake import create_app
from panel_fake.config import Flavor, PanelConfig, default_app_key
from provisioner.adapters.drift_records import SqlDriftRecords
from provisioner.adapters.panel import PanelClient
from provisioner.adapters.rate_gate import RateGate
from provisioner.adapters.tables import ProvisioningRow, ServerStateRow
from provisioner.domain.drift import DriftKind
from provisioner.domain.provisioning import ProvisioningStatus
from provisioner.service_layer.drift import Done, DriftReconciler
from provisioner.service_layer.unit_of_work import SqlProvisionerUnitOfWork
from provisioner.testing import FakeDriftRecords, FakePanel, FakeProvisionerUnitOfWork
from spawnpoint_kit.db import drop_database, make_engine, make_session_factory, prepare_database
from spawnpoint_kit.messaging.outbox import OutboxMessage
from spawnpoint_kit.messaging.topology import Topology

pytestmark = pytest.mark.component

ALEMBIC_INI = Path(__file__).resolve().parents[1] / "alembic.ini"
TOPOLOGY = Topology("tdr.")
PLAN = {"memory": 1024, "swap": 0, "disk": 5120, "io": 500, "cpu": 100, "threads": None}
FEATURES = {"databases": 0, "allocations": 0, "backups": 0}


@pytest.fixture(scope="module")
async def sessions() -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    url = f"{os.environ['SPAWNPOINT_PG_URL']}/sp_test_drift_{uuid.uuid4().hex[:8]}"
    await prepare_database(ALEMBIC_INI, url)
    engine = make_engine(url, pool_size=4)
    yield make_session_factory(engine)
    await engine.dispose()
    await drop_database(url)


def _state(order_id: uuid.UUID, *, state: str = "running", version: int = 1, applied: int = 1) -> ServerStateRow:
    return ServerStateRow(
        order_id=order_id,
        desired_state=state,
        desired_version=version,
        desired_reason="activated",
        desired_limits={"plan_id": "standard", "limits": dict(PLAN), "feature_limits": dict(FEATURES)},
        desired_event={
            "event_id": str(uuid.uuid4()),
            "event_type": "DesiredServerStateChanged",
            "order_id": str(order_id),
            "correlation_id": "corr",
        },
        applied_state=state if applied else None,
        applied_version=applied,
    )


def _provisioning(order_id: uuid.UUID, server_id: int | None) -> ProvisioningRow:
    return ProvisioningRow(
        order_id=order_id,
        status=ProvisioningStatus.READY if server_id else ProvisioningStatus.REQUESTED,
        correlation_id="corr",
        paid_event_id=uuid.uuid4(),
        order_snapshot={},
        server_id=server_id,
    )


async def test_records_join_both_tables_and_a_suspension_by_hand_is_sent_back_through_the_outbox(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    panel = FakePanel()
    ready, early, old = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    server = panel.add_server(str(ready), status="suspended")  # suspended by hand
    async with sessions() as session:
        session.add_all(
            [
                _provisioning(ready, server.id),
                _state(ready),
                _state(early, applied=0),  # a desired state before its OrderPaid
                _provisioning(old, None),  # no desired state yet
            ]
        )
        await session.commit()
    records = SqlDriftRecords(sessions)
    everything = {r.order_id: r for r in await records.all()}
    assert {ready, early, old} <= set(everything)
    assert everything[early].status is None and everything[early].state is not None
    assert everything[old].state is None and everything[old].status == ProvisioningStatus.REQUESTED
    ready_state = everything[ready].state
    assert ready_state is not None and ready_state.desired.limits == PLAN
    assert set(await records.of([ready, old])) == {ready, old}

    reconciler = DriftReconciler(
        lambda: SqlProvisionerUnitOfWork(sessions, TOPOLOGY), records, panel, desired_state_queue="tdr.q"
    )
    report = await reconciler.run(fix=True)
    mine = [f for f in report.findings if f.drift.order_id == ready]
    assert [(f.drift.kind, f.done) for f in mine] == [(DriftKind.SUSPENDED_BY_HAND, Done.CONVERGING)]
    async with sessions() as session:
        row = await session.get(ServerStateRow, ready)
        assert row is not None and row.applied_version == 0 and row.last_error and "drift" in row.last_error
        sent = (await session.exec(select(OutboxMessage).where(OutboxMessage.order_id == ready))).all()
    assert [(m.routing_key, m.message_type) for m in sent] == [("tdr.q", "DesiredServerStateChanged")]


# the panel's server list -------------------------------------------------------------------------


class Served:
    """The stand-in on a free loopback port, in a thread."""

    def __init__(self, config: PanelConfig) -> None:
        self.flavor: Flavor = config.flavor
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(create_app(config), log_level="critical"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> Served:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "panel stand-in did not start"
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


@pytest.fixture(scope="module", params=["pterodactyl", "pelican"])
def served(request: pytest.FixtureRequest) -> Iterator[Served]:
    flavor: Flavor = request.param
    with Served(PanelConfig(flavor=flavor, rate_limit=0)) as panel:
        yield panel


async def test_the_listing_pages_through_every_server_null_external_ids_included(served: Served) -> None:
    flavor = served.flavor
    externals = [str(uuid.uuid4()) for _ in range(5)] + [None]
    async with httpx.AsyncClient(base_url=served.url, timeout=10) as control:
        for external_id in externals:
            response = await control.post("/_fake/servers", json={"external_id": external_id})
            assert response.status_code < 300, response.text
    gate = RateGate(per_minute=6000)
    client = PanelClient(served.url, default_app_key(flavor), flavor=flavor, timeout=10, gate=gate)
    try:
        uow = FakeProvisionerUnitOfWork()  # the listing reads no records
        reconciler = DriftReconciler(lambda: uow, FakeDriftRecords(uow), client, desired_state_queue="q", per_page=2)
        servers, pages = await reconciler.listing()
        first = await client.list_servers(page=1, per_page=2)
        past = await client.list_servers(page=99, per_page=2)
    finally:
        await client.aclose()
    assert [s.external_id for s in servers][-6:] == externals
    assert len({s.id for s in servers}) == len(servers)
    assert pages == first.total_pages and len(first.servers) == 2
    assert past.servers == [] and past.page == 99
