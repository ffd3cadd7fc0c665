"""Drift between Spawnpoint's records and the panel: the pure classification (every kind, and none on a
clean system or in the moments the normal paths are still working), then the reconciler with the
in-memory unit of work and the fake panel (paging, confirmation, fix and dry run, convergence taking
over), and the operator endpoint in process."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY

from provisioner.adapters.tables import ProvisioningRow, ServerStateRow
from provisioner.domain.drift import (
    DriftAction,
    DriftKind,
    OrderRecord,
    ServerPage,
    StateRecord,
    classify,
    order_id_of,
)
from provisioner.domain.panel import PanelServer, PanelUnreachable
from provisioner.domain.provisioning import ProvisioningStatus
from provisioner.domain.retry import RetryPolicy
from provisioner.domain.server_state import Desired
from provisioner.entrypoints.consumers import desired_state_subscription
from provisioner.entrypoints.drift import drift_router
from provisioner.queues import PROVISIONER_DESIRED_STATE
from provisioner.service_layer.converge import ConvergeServer
from provisioner.service_layer.drift import Done, DriftReconciler, ListingError
from provisioner.testing import FakeDriftRecords, FakePanel, FakeProvisionerUnitOfWork
from spawnpoint_contracts import (
    DesiredServerState,
    DesiredServerStateChanged,
    DesiredServerStateChangedPayload,
    FeatureLimits,
    Limits,
    RentalCause,
)
from spawnpoint_kit.auth import TokenVerifier, install_auth, mint_token
from spawnpoint_kit.messaging.delivery import Delivery
from spawnpoint_kit.messaging.topology import Topology

pytestmark = pytest.mark.unit

RUNNING, SUSPENDED, TERMINATED = DesiredServerState.RUNNING, DesiredServerState.SUSPENDED, DesiredServerState.TERMINATED
READY, INSTALLING = ProvisioningStatus.READY, ProvisioningStatus.INSTALLING
PLAN = {"memory": 1024, "swap": 0, "disk": 5120, "io": 500, "cpu": 100, "threads": None}
FEATURES = {"databases": 0, "allocations": 0, "backups": 0}
QUEUE = "provisioner.desired-state"

# the pure classification -------------------------------------------------------------------------


def _state(state: DesiredServerState = RUNNING, version: int = 1, *, applied: int | None = None) -> StateRecord:
    return StateRecord(
        desired=Desired(state, version, dict(PLAN), dict(FEATURES)),
        applied_version=version if applied is None else applied,
        applied_state=state.value,
    )


def _record(
    server_id: int | None,
    *,
    status: ProvisioningStatus | None = READY,
    state: StateRecord | None = None,
    refunded: bool = False,
    order_id: uuid.UUID | None = None,
) -> OrderRecord:
    return OrderRecord(
        order_id=order_id or uuid.uuid4(),
        status=status,
        server_id=server_id,
        refunded=refunded,
        state=state if state is not None else _state(),
    )


def _server(server_id: int, external_id: str | None, status: str | None = None, **limits: Any) -> PanelServer:
    return PanelServer(
        server_id,
        f"uuid-{server_id}",
        f"id{server_id}",
        external_id,
        status,
        7,
        1,
        limits={**PLAN, **{k: v for k, v in limits.items() if k in PLAN}},
        feature_limits={**FEATURES, **{k: v for k, v in limits.items() if k in FEATURES}},
    )


def _ours(record: OrderRecord, status: str | None = None, **limits: Any) -> PanelServer:
    assert record.server_id is not None
    return _server(record.server_id, str(record.order_id), status, **limits)


def _kinds(records: list[OrderRecord], servers: list[PanelServer]) -> list[DriftKind]:
    return [d.kind for d in classify(records, servers).drifts]


def test_a_clean_system_has_no_drift() -> None:
    running = _record(1)
    suspended = _record(2, state=_state(SUSPENDED, 3))
    terminated = _record(3, state=_state(TERMINATED, 4))  # gone from the panel, as wished
    old = _record(4, state=None)  # an order from before rentals: no desired state
    servers = [_ours(running), _ours(suspended, "suspended"), _ours(old), _server(9, None), _server(10, "whmcs-12")]
    result = classify([running, suspended, terminated, old], servers)
    assert result.drifts == []
    assert result.foreign == 2  # null and non-UUID external ids: someone else's


def test_a_suspension_by_hand_against_a_running_rental() -> None:
    record = _record(1)
    (drift,) = classify([record], [_ours(record, "suspended")]).drifts
    assert (drift.kind, drift.order_id, drift.server_id) == (DriftKind.SUSPENDED_BY_HAND, record.order_id, 1)
    assert drift.default_action == DriftAction.CONVERGE


def test_an_unsuspension_by_hand_against_a_lapsed_rental() -> None:
    record = _record(1, state=_state(SUSPENDED, 2))
    (drift,) = classify([record], [_ours(record, None)]).drifts
    assert drift.kind == DriftKind.UNSUSPENDED_BY_HAND and drift.default_action == DriftAction.CONVERGE


def test_limits_changed_on_the_panel_name_what_differs() -> None:
    record = _record(1)
    (drift,) = classify([record], [_ours(record, memory=4096, backups=3)]).drifts
    assert drift.kind == DriftKind.LIMITS_DIFFER and drift.default_action == DriftAction.CONVERGE
    assert drift.detail == "memory: panel 4096, plan 1024; backups: panel 3, plan 0"


def test_a_suspended_server_with_other_limits_is_two_drifts() -> None:
    record = _record(1)
    assert _kinds([record], [_ours(record, "suspended", disk=1)]) == [
        DriftKind.SUSPENDED_BY_HAND,
        DriftKind.LIMITS_DIFFER,
    ]


def test_a_ready_orders_server_deleted_on_the_panel_is_reported_never_recreated() -> None:
    record = _record(5, state=_state(SUSPENDED, 2))
    (drift,) = classify([record], [_server(6, None)]).drifts
    assert (drift.kind, drift.server_id) == (DriftKind.DELETED_ON_PANEL, 5)
    assert drift.default_action == DriftAction.REPORT


def test_a_deleted_server_names_the_server_that_carries_the_orders_id_now() -> None:
    record = _record(5)
    (drift,) = classify([record], [_server(8, str(record.order_id).upper())]).drifts
    assert drift.kind == DriftKind.DELETED_ON_PANEL  # and #8 is not an orphan: it carries a live order's id
    assert "server #8 carries the order's external id" in drift.detail


def test_an_installing_orders_server_gone_by_id_and_external_id_has_vanished() -> None:
    record = _record(5, status=INSTALLING, state=_state(RUNNING, 1, applied=0))
    (drift,) = classify([record], []).drifts
    assert drift.kind == DriftKind.VANISHED and drift.default_action == DriftAction.REPORT


def test_orphans_follow_our_external_id_format_and_are_no_live_order_of_ours() -> None:
    stranger = str(uuid.uuid4())
    terminated = _record(3, state=_state(TERMINATED, 4))
    failed = _record(None, status=ProvisioningStatus.FAILED)
    unpaid = _record(None, status=None, state=_state(RUNNING, 1, applied=0))
    servers = [
        _server(1, stranger),
        _server(2, str(terminated.order_id)),  # recreated by hand after the termination
        _server(4, str(failed.order_id)),  # left behind by a failed order
        _server(5, str(unpaid.order_id)),
        _server(6, None),  # null: someone else's
        _server(7, "not-a-uuid"),
    ]
    drifts = classify([terminated, failed, unpaid], servers).drifts
    assert [(d.kind, d.server_id) for d in drifts] == [(DriftKind.ORPHAN, i) for i in (1, 2, 4, 5)]
    assert all(d.default_action == DriftAction.REPORT for d in drifts)
    assert drifts[0].order_id == uuid.UUID(stranger)


def test_a_second_server_with_an_orders_external_id_is_an_orphan() -> None:
    record = _record(1)
    other = dataclasses.replace(_ours(record), id=2)
    detached = dataclasses.replace(_ours(record), external_id=None)  # ours by id, external id removed by hand
    assert [(d.kind, d.server_id) for d in classify([record], [detached, other]).drifts] == [(DriftKind.ORPHAN, 2)]


def test_nothing_is_invented_while_the_normal_paths_are_at_work() -> None:
    in_flight = _record(1, state=_state(SUSPENDED, 2, applied=1))  # a suspension not applied yet
    waiting = _record(2, status=INSTALLING, state=_state(SUSPENDED, 2, applied=0))
    creating = _record(None, status=ProvisioningStatus.RETRY_SCHEDULED)  # its server exists, not recorded yet
    refunded = _record(4, refunded=True)  # the refund job suspended it
    refunded_gone = _record(5, refunded=True)
    failed_gone = _record(6, status=ProvisioningStatus.FAILED)  # install failed, ProvisionFailed said so
    terminating = _record(7, state=_state(TERMINATED, 3, applied=2))  # convergence deletes it now
    blocked = _record(8)
    servers = [
        _ours(in_flight, None),
        _ours(waiting, "installing"),
        _server(3, str(creating.order_id)),
        _ours(refunded, "suspended"),
        _ours(terminating),
        _ours(blocked, "install_failed", memory=1),
        _server(11, str(uuid.uuid4()), "installing"),  # a server still installing is left alone
    ]
    records = [in_flight, waiting, creating, refunded, refunded_gone, failed_gone, terminating, blocked]
    result = classify(records, servers)
    assert result.drifts == []
    assert result.installing == 2


def test_our_external_id_format_is_a_uuid_in_any_case() -> None:
    order_id = uuid.uuid4()
    assert order_id_of(str(order_id).upper()) == order_id
    assert order_id_of(None) is None and order_id_of("") is None and order_id_of("1234") is None


# the reconciler ----------------------------------------------------------------------------------


class Shop:
    """The in-memory unit of work, the fake panel and the reconciler, with orders set up as the real
    flow leaves them (ready, desired state applied)."""

    def __init__(self, *, per_page: int = 100) -> None:
        self.uow = FakeProvisionerUnitOfWork()
        self.panel = FakePanel()
        self.records = FakeDriftRecords(self.uow)
        self.reconciler = DriftReconciler(
            lambda: self.uow, self.records, self.panel, desired_state_queue=QUEUE, per_page=per_page
        )

    def order(
        self, state: DesiredServerState = RUNNING, *, version: int = 1, status: str | None = None
    ) -> tuple[uuid.UUID, int]:
        order_id = uuid.uuid4()
        server = self.panel.add_server(str(order_id), status=status)
        self.uow.fake_provisionings.rows[order_id] = ProvisioningRow(
            order_id=order_id,
            status=READY if status != "installing" else INSTALLING,
            correlation_id="corr",
            paid_event_id=uuid.uuid4(),
            order_snapshot={},
            server_id=server.id,
        )
        event = _event(order_id, state, version)
        self.uow.fake_server_states.rows[order_id] = ServerStateRow(
            order_id=order_id,
            desired_state=state.value,
            desired_version=version,
            desired_reason=event.payload.reason.value,
            desired_limits={
                "plan_id": "standard",
                "limits": dict(PLAN),
                "feature_limits": dict(FEATURES),
            },
            desired_event=event.model_dump(mode="json"),
            applied_state=state.value,
            applied_version=version,
            applied_limits={"limits": dict(PLAN), "feature_limits": dict(FEATURES)},
        )
        return order_id, server.id


def _event(order_id: uuid.UUID, state: DesiredServerState, version: int) -> DesiredServerStateChanged:
    return DesiredServerStateChanged(
        order_id=order_id,
        correlation_id="corr",
        producer="payment-service",
        payload=DesiredServerStateChangedPayload(
            version=version,
            state=state,
            reason=RentalCause.LAPSED if state != RUNNING else RentalCause.ACTIVATED,
            plan_id="standard",
            limits=Limits(memory=1024, swap=0, disk=5120, io=500, cpu=100),
            feature_limits=FeatureLimits(databases=0, backups=0, allocations=0),
        ),
    )


def _converge(panel: FakePanel) -> ConvergeServer:
    policy = RetryPolicy(attempts=2, initial_seconds=0.01, max_wait_seconds=0.01, jitter_seconds=0.0)
    return ConvergeServer(panel=panel, retry=policy, topology=Topology(""), queue=PROVISIONER_DESIRED_STATE)


async def _deliver_resent(shop: Shop) -> None:
    """Hand every message the reconciler sent to the desired-state queue to convergence, as the broker does."""
    converge = _converge(shop.panel)
    subscription = desired_state_subscription(converge, lambda: shop.uow)
    for message in shop.uow.messages(QUEUE):
        event = DesiredServerStateChanged.model_validate_json(message.body)
        await subscription.handle(event, Delivery.of(event, QUEUE))


async def test_a_run_over_several_pages_finds_every_kind_and_counts_them() -> None:
    shop = Shop(per_page=2)
    clean = [shop.order() for _ in range(3)]
    by_hand, _ = shop.order()
    shop.panel.set_status(shop.uow.fake_provisionings.rows[by_hand].server_id or 0, "suspended")
    lapsed, lapsed_server = shop.order(SUSPENDED, version=2)  # applied suspended; then unsuspended by hand
    resized, resized_server = shop.order()
    shop.panel.set_limits(resized_server, memory=9999)
    deleted, deleted_server = shop.order()
    del shop.panel.servers[deleted_server]
    orphan = shop.panel.add_server(str(uuid.uuid4()), status=None)
    shop.panel.add_server(None, status=None)
    assert lapsed_server in shop.panel.servers  # FakePanel.add_server leaves it unsuspended: the drift

    report = await shop.reconciler.run()

    found = {(f.drift.kind, f.drift.order_id) for f in report.findings}
    assert found == {
        (DriftKind.SUSPENDED_BY_HAND, by_hand),
        (DriftKind.UNSUSPENDED_BY_HAND, lapsed),
        (DriftKind.LIMITS_DIFFER, resized),
        (DriftKind.DELETED_ON_PANEL, deleted),
        (DriftKind.ORPHAN, uuid.UUID(str(orphan.external_id))),
    }
    assert all(f.done == Done.REPORTED for f in report.findings)
    assert not any(f.drift.order_id in {c for c, _ in clean} for f in report.findings)
    assert report.pages == 4 and report.servers_seen == 8 and report.foreign == 1
    assert report.counts()["orphan"] == 1 and report.counts()["vanished"] == 0
    assert REGISTRY.get_sample_value("provisioner_drift_servers", {"kind": "limits_differ"}) == 1
    assert shop.uow.messages() == []  # report only: nothing sent, nothing changed


async def test_fix_sends_the_converge_kinds_back_and_convergence_puts_the_panel_right() -> None:
    shop = Shop()
    by_hand, by_hand_server = shop.order()
    shop.panel.set_status(by_hand_server, "suspended")
    resized, resized_server = shop.order()
    shop.panel.set_limits(resized_server, memory=9999)
    deleted, deleted_server = shop.order()
    del shop.panel.servers[deleted_server]

    dry = await shop.reconciler.run(fix=True, dry_run=True)
    assert {f.drift.kind: f.done for f in dry.findings} == {
        DriftKind.SUSPENDED_BY_HAND: Done.WOULD_CONVERGE,
        DriftKind.LIMITS_DIFFER: Done.WOULD_CONVERGE,
        DriftKind.DELETED_ON_PANEL: Done.REPORTED,
    }
    assert shop.uow.messages() == [] and shop.uow.fake_server_states.rows[by_hand].applied_version == 1

    fixed = await shop.reconciler.run(fix=True)
    assert {f.drift.kind: f.done for f in fixed.findings}[DriftKind.SUSPENDED_BY_HAND] == Done.CONVERGING
    sent = shop.uow.messages(QUEUE)
    assert sorted(m.order_id for m in sent if m.order_id) == sorted([by_hand, resized])
    assert shop.uow.fake_server_states.rows[by_hand].applied_version == 0  # no longer confirmed

    await _deliver_resent(shop)
    assert shop.panel.servers[by_hand_server].status is None
    assert shop.panel.servers[resized_server].limits["memory"] == 1024
    assert shop.uow.fake_server_states.rows[by_hand].applied_version == 1
    assert shop.uow.fake_server_states.rows[by_hand].last_error is None
    after = await shop.reconciler.run()
    assert [(f.drift.kind, f.drift.order_id) for f in after.findings] == [(DriftKind.DELETED_ON_PANEL, deleted)]


async def test_a_change_by_the_normal_paths_during_the_run_is_not_reported() -> None:
    shop = Shop()
    order_id, server_id = shop.order()
    listing = shop.panel.list_servers

    async def suspended_meanwhile(*, page: int, per_page: int = 100) -> ServerPage:
        # A lapse arrives after the records were read: convergence suspends the server while we page.
        row = shop.uow.fake_server_states.rows[order_id]
        row.desired_state, row.desired_version = "suspended", 2
        row.updated_at = datetime.now(UTC)
        shop.panel.set_status(server_id, "suspended")
        return await listing(page=page, per_page=per_page)

    shop.panel.list_servers = suspended_meanwhile  # type: ignore[method-assign]
    report = await shop.reconciler.run(fix=True)
    assert report.findings == [] and report.unconfirmed == 1
    assert shop.uow.messages() == []


async def test_a_server_the_listing_missed_is_not_reported_deleted() -> None:
    shop = Shop()
    _, server_id = shop.order()
    listing = shop.panel.list_servers

    async def missing_one(*, page: int, per_page: int = 100) -> ServerPage:
        result = await listing(page=page, per_page=per_page)  # a deletion elsewhere shifted the page
        return dataclasses.replace(result, servers=[s for s in result.servers if s.id != server_id])

    shop.panel.list_servers = missing_one  # type: ignore[method-assign]
    report = await shop.reconciler.run()
    assert report.findings == [] and report.unconfirmed == 1


async def test_orphans_cost_no_panel_call_beyond_the_listing_and_one_created_meanwhile_is_not_one() -> None:
    shop = Shop()
    for _ in range(5):
        shop.panel.add_server(str(uuid.uuid4()), status=None)
    being_created = shop.panel.add_server(str(uuid.uuid4()), status=None)
    records = shop.records.of

    async def recorded_meanwhile(order_ids: Any) -> dict[uuid.UUID, OrderRecord]:
        # The order's OrderPaid was handled after the first read: its creation made this server.
        order_id = uuid.UUID(str(being_created.external_id))
        shop.uow.fake_provisionings.rows[order_id] = ProvisioningRow(
            order_id=order_id,
            status=ProvisioningStatus.REQUESTED,
            correlation_id="corr",
            paid_event_id=uuid.uuid4(),
            order_snapshot={},
        )
        return await records(order_ids)

    shop.records.of = recorded_meanwhile  # type: ignore[method-assign]
    shop.panel.calls.clear()
    report = await shop.reconciler.run()
    assert report.counts()["orphan"] == 5 and report.unconfirmed == 1
    assert shop.panel.calls == ["servers"]


async def test_a_failed_listing_fails_the_run_and_keeps_the_latest_report() -> None:
    shop = Shop()
    shop.order()
    first = await shop.reconciler.run()
    shop.panel.listing_errors.append(PanelUnreachable("GET /servers: ConnectTimeout"))
    with pytest.raises(PanelUnreachable):
        await shop.reconciler.run()
    assert shop.reconciler.latest is first


async def test_a_panel_that_ignores_the_page_fails_the_run() -> None:
    shop = Shop(per_page=1)
    shop.order()
    shop.order()
    listing = shop.panel.list_servers

    async def always_first(*, page: int, per_page: int = 100) -> ServerPage:
        return await listing(page=1, per_page=per_page)

    shop.panel.list_servers = always_first  # type: ignore[method-assign]
    with pytest.raises(ListingError):
        await shop.reconciler.run()


async def test_a_row_changed_before_the_fix_is_left_for_the_next_run() -> None:
    shop = Shop()
    order_id, server_id = shop.order()
    shop.panel.set_status(server_id, "suspended")
    records = shop.records.of
    reads = []

    async def then_changed(order_ids: Any) -> dict[uuid.UUID, OrderRecord]:
        found = await records(order_ids)
        reads.append(order_ids)
        if len(reads) == 2:  # the confirming read: a stale delivery touches the row right after it
            shop.uow.fake_server_states.rows[order_id].updated_at = datetime.now(UTC)
        return found

    shop.records.of = then_changed  # type: ignore[method-assign]
    report = await shop.reconciler.run(fix=True)
    assert [f.done for f in report.findings] == [Done.CHANGED_MEANWHILE]
    assert shop.uow.messages() == []


# the operator endpoint ---------------------------------------------------------------------------

SECRET = "drift-test-secret-of-at-least-32-bytes"


@pytest.fixture
async def endpoint() -> AsyncIterator[tuple[Shop, httpx.AsyncClient]]:
    shop = Shop()
    app = FastAPI()
    install_auth(app, TokenVerifier(SECRET))
    app.include_router(drift_router(shop.reconciler))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield shop, client


def _auth(*, operator: bool = True) -> dict[str, str]:
    token = mint_token(SECRET, sub="olga", roles=("operator",) if operator else ())
    return {"Authorization": f"Bearer {token}"}


async def test_the_endpoint_runs_for_operators_only_and_says_when_the_panel_cannot_be_listed(
    endpoint: tuple[Shop, httpx.AsyncClient],
) -> None:
    shop, client = endpoint
    _, server_id = shop.order()
    shop.panel.set_status(server_id, "suspended")
    assert (await client.get("/operator/drift", headers=_auth())).status_code == 404
    assert (await client.post("/operator/drift", headers=_auth(operator=False))).status_code == 403

    response = await client.post("/operator/drift", params={"dry_run": "true"}, headers=_auth())
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["counts"]["suspended_by_hand"] == 1 and body["dry_run"] is True
    (finding,) = body["findings"]
    assert (finding["default_action"], finding["done"]) == ("converge", "would_converge")
    assert (await client.get("/operator/drift", headers=_auth())).json() == body

    shop.panel.listing_errors.append(PanelUnreachable("GET /servers: ConnectTimeout"))
    failed = await client.post("/operator/drift", headers=_auth())
    assert failed.status_code == 503 and "could not be listed" in failed.json()["detail"]
