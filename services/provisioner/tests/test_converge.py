"""A server's life after creation, with the in-memory unit of work and the fake panel: desired states
converge the panel exactly once, in version order, never touching an install in progress."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from provisioner.adapters.tables import ProvisioningRow
from provisioner.domain.panel import PanelError, PanelUnreachable
from provisioner.domain.provisioning import ProvisioningStatus
from provisioner.domain.retry import RetryPolicy
from provisioner.domain.server_state import Desired, Observed, Step, build_body, next_step
from provisioner.entrypoints.consumers import desired_state_subscription
from provisioner.queues import PROVISIONER_DESIRED_STATE
from provisioner.service_layer.converge import ConvergeServer
from provisioner.service_layer.install_watch import InstallWatcher
from provisioner.testing import FakePanel, FakeProvisionerUnitOfWork
from spawnpoint_contracts import (
    DesiredServerState,
    DesiredServerStateChanged,
    DesiredServerStateChangedPayload,
    FeatureLimits,
    Limits,
    RentalCause,
    ServerActionFailed,
    ServerResized,
    ServerSuspended,
    ServerTerminated,
    ServerUnsuspended,
)
from spawnpoint_kit.messaging.delivery import Delivery
from spawnpoint_kit.messaging.headers import DEAD_LETTER_REASON, FORCE_DELETE, REPLAY_COUNT
from spawnpoint_kit.messaging.topology import Topology

pytestmark = pytest.mark.unit

QUEUE = "provisioner.desired-state"
SMALL = Limits(memory=1024, swap=0, disk=5120, io=500, cpu=100)
LARGE = Limits(memory=4096, swap=0, disk=20480, io=500, cpu=200)
FEATURES = FeatureLimits(databases=0, backups=0, allocations=0)


def _desired(
    order_id: uuid.UUID, state: DesiredServerState, version: int, limits: Limits = SMALL
) -> DesiredServerStateChanged:
    return DesiredServerStateChanged(
        order_id=order_id,
        correlation_id="corr-1",
        producer="payment-service",
        payload=DesiredServerStateChangedPayload(
            version=version,
            state=state,
            reason=RentalCause.LAPSED if state != DesiredServerState.RUNNING else RentalCause.RECOVERED,
            plan_id="standard",
            limits=limits,
            feature_limits=FEATURES,
        ),
    )


def _converge(panel: FakePanel, *, delays: tuple[int, ...] = (30,)) -> ConvergeServer:
    policy = RetryPolicy(
        attempts=2, initial_seconds=0.01, max_wait_seconds=0.01, jitter_seconds=0.0, broker_delays=delays
    )
    return ConvergeServer(panel=panel, retry=policy, topology=Topology(""), queue=PROVISIONER_DESIRED_STATE)


async def _deliver(
    converge: ConvergeServer, uow: FakeProvisionerUnitOfWork, event: DesiredServerStateChanged, **headers: Any
) -> None:
    delivery = Delivery.of(event, QUEUE, headers=headers)
    await desired_state_subscription(converge, lambda: uow).handle(event, delivery)


def _ready_server(uow: FakeProvisionerUnitOfWork, panel: FakePanel, status: str | None = None) -> tuple[uuid.UUID, int]:
    order_id = uuid.uuid4()
    server = panel.add_server(str(order_id), status=status)
    uow.fake_provisionings.rows[order_id] = ProvisioningRow(
        order_id=order_id,
        status=ProvisioningStatus.READY if status != "installing" else ProvisioningStatus.INSTALLING,
        correlation_id="corr-1",
        paid_event_id=uuid.uuid4(),
        order_snapshot={},
        server_id=server.id,
    )
    return order_id, server.id


def _panel_calls(panel: FakePanel) -> list[str]:
    return [c for c in panel.calls if c != "server"]


async def test_a_lapse_suspends_once_and_a_payment_unsuspends_once() -> None:
    uow, panel = FakeProvisionerUnitOfWork(), FakePanel()
    order_id, server_id = _ready_server(uow, panel)
    converge = _converge(panel)
    await _deliver(converge, uow, _desired(order_id, DesiredServerState.SUSPENDED, 3))
    await _deliver(converge, uow, _desired(order_id, DesiredServerState.SUSPENDED, 3))  # a duplicate
    assert panel.servers[server_id].status == "suspended"
    assert _panel_calls(panel) == ["suspend"]
    assert [e.payload.desired_version for e in uow.events(ServerSuspended)] == [3]
    await _deliver(converge, uow, _desired(order_id, DesiredServerState.RUNNING, 4))
    assert panel.servers[server_id].status is None
    assert _panel_calls(panel) == ["suspend", "unsuspend"]
    assert len(uow.events(ServerUnsuspended)) == 1


async def test_suspend_and_unsuspend_delivered_in_reverse_end_in_the_newer_state_with_no_panel_call() -> None:
    uow, panel = FakeProvisionerUnitOfWork(), FakePanel()
    order_id, server_id = _ready_server(uow, panel)
    converge = _converge(panel)
    unsuspend, suspend = (
        _desired(order_id, DesiredServerState.RUNNING, 4),
        _desired(order_id, DesiredServerState.SUSPENDED, 3),
    )
    for event in (unsuspend, suspend, unsuspend, suspend):
        await _deliver(converge, uow, event)
    assert panel.servers[server_id].status is None
    assert _panel_calls(panel) == []
    assert panel.calls.count("server") == 1  # one read for v4; v3 and the duplicates are stale: no call
    assert not uow.events(ServerSuspended) and not uow.events(ServerUnsuspended)


async def test_a_suspension_asked_during_the_install_waits_and_happens_when_the_install_ends() -> None:
    uow, panel = FakeProvisionerUnitOfWork(), FakePanel()
    order_id, server_id = _ready_server(uow, panel, status="installing")
    converge = _converge(panel)
    await _deliver(converge, uow, _desired(order_id, DesiredServerState.SUSPENDED, 2))
    assert _panel_calls(panel) == [] and panel.servers[server_id].status == "installing"
    assert uow.fake_server_states.rows[order_id].waiting == "install"

    panel.set_status(server_id, None)  # the install finished on the panel
    watcher = InstallWatcher(lambda: uow, panel, poll_seconds=1.0, desired_state_queue=QUEUE)
    uow.fake_provisionings.rows[order_id].next_check_at = datetime.now(UTC)
    await watcher.check(order_id)
    (resent,) = [m for m in uow.messages() if m.queue == QUEUE]
    event = DesiredServerStateChanged.model_validate_json(resent.body)
    assert event.payload.version == 2
    await _deliver(converge, uow, event)
    assert panel.servers[server_id].status == "suspended"
    assert _panel_calls(panel) == ["suspend"]


@pytest.mark.parametrize("plan_changed", [False, True], ids=["as-created", "resized-meanwhile"])
async def test_a_running_state_that_waited_for_the_install_is_applied_by_the_read_that_saw_it_installed(
    plan_changed: bool,
) -> None:
    """The usual order: its first desired state (running, the plan it was created with) arrives while the
    server installs. The install check's own read shows it already: applied there, nothing sent back. A
    build that no longer matches (a plan changed meanwhile) is sent back for convergence to resize."""
    uow, panel = FakeProvisionerUnitOfWork(), FakePanel()
    order_id, server_id = _ready_server(uow, panel, status="installing")
    converge = _converge(panel)
    await _deliver(converge, uow, _desired(order_id, DesiredServerState.RUNNING, 1, LARGE if plan_changed else SMALL))
    assert uow.fake_server_states.rows[order_id].waiting == "install"

    panel.set_status(server_id, None)
    panel.calls.clear()
    uow.fake_provisionings.rows[order_id].next_check_at = datetime.now(UTC)
    await InstallWatcher(lambda: uow, panel, poll_seconds=1.0, desired_state_queue=QUEUE).check(order_id)
    state = uow.fake_server_states.rows[order_id]
    assert panel.calls == ["server"], "the install check's read only"
    resent = [m for m in uow.messages() if m.queue == QUEUE]
    if plan_changed:
        assert len(resent) == 1 and state.applied_version == 0
    else:
        assert resent == [] and (state.applied_state, state.applied_version, state.waiting) == ("running", 1, None)
        assert not uow.events(ServerUnsuspended) and not uow.events(ServerResized), "nothing changed on the panel"


async def test_a_redelivery_after_the_panel_suspended_but_before_the_commit_records_it_without_a_call() -> None:
    uow, panel = FakeProvisionerUnitOfWork(), FakePanel()
    order_id, server_id = _ready_server(uow, panel)
    panel.set_status(server_id, "suspended")  # the 204 came, then the process died before committing
    await _deliver(_converge(panel), uow, _desired(order_id, DesiredServerState.SUSPENDED, 3))
    assert _panel_calls(panel) == []
    assert len(uow.events(ServerSuspended)) == 1
    assert uow.fake_server_states.rows[order_id].applied_version == 3


async def test_a_panel_that_stays_down_is_retried_through_the_broker_then_dead_lettered_and_replayable() -> None:
    uow, panel = FakeProvisionerUnitOfWork(), FakePanel()
    order_id, server_id = _ready_server(uow, panel)
    converge = _converge(panel, delays=(30,))
    event = _desired(order_id, DesiredServerState.SUSPENDED, 3)
    panel.suspend_errors = [PanelUnreachable("POST suspend: ConnectTimeout")] * 4
    await _deliver(converge, uow, event)
    assert [m.queue for m in uow.messages()] == [f"{QUEUE}.retry.30s"]
    await _deliver(converge, uow, event)  # the delayed copy comes back; still down
    dead = [m for m in uow.messages() if m.queue == f"{QUEUE}.dlq"]
    assert len(dead) == 1 and dead[0].headers[DEAD_LETTER_REASON] == "suspend_failed"
    (failed,) = uow.events(ServerActionFailed)
    assert failed.payload.reason == "suspend_failed" and failed.payload.replayable
    await _deliver(converge, uow, event)  # a redelivery without a replay: waits for the operator
    assert panel.calls.count("suspend") == 4
    panel.suspend_errors = []
    await _deliver(converge, uow, event, **{REPLAY_COUNT: 1})  # spawnctl dlq replay, panel back
    assert panel.servers[server_id].status == "suspended"
    assert len(uow.events(ServerSuspended)) == 1


async def test_a_plan_change_sends_the_complete_build_and_is_told_after_the_read_back() -> None:
    uow, panel = FakeProvisionerUnitOfWork(), FakePanel()
    order_id, server_id = _ready_server(uow, panel)
    await _deliver(_converge(panel), uow, _desired(order_id, DesiredServerState.RUNNING, 2, limits=LARGE))
    (body,) = panel.build_bodies
    assert set(body) >= {"allocation", "memory", "swap", "disk", "io", "cpu", "threads", "feature_limits"}
    assert body["allocation"] == server_id + 100 and body["memory"] == 4096
    assert panel.servers[server_id].limits["memory"] == 4096
    (resized,) = uow.events(ServerResized)
    assert resized.payload.limits.memory == 4096


async def test_termination_deletes_once_and_a_server_already_gone_is_success() -> None:
    uow, panel = FakeProvisionerUnitOfWork(), FakePanel()
    order_id, server_id = _ready_server(uow, panel)
    converge = _converge(panel)
    await _deliver(converge, uow, _desired(order_id, DesiredServerState.TERMINATED, 5))
    await _deliver(converge, uow, _desired(order_id, DesiredServerState.TERMINATED, 5))
    assert server_id not in panel.servers and panel.calls.count("delete_server") == 1
    (terminated,) = uow.events(ServerTerminated)
    assert terminated.payload.already_gone is False

    other_id, other_server = _ready_server(uow, panel)
    del panel.servers[other_server]
    await _deliver(converge, uow, _desired(other_id, DesiredServerState.TERMINATED, 5))
    assert [e.payload.already_gone for e in uow.events(ServerTerminated)] == [False, True]


async def test_a_deletion_the_panel_refuses_is_dead_lettered_at_once_with_the_panels_message() -> None:
    uow, panel = FakeProvisionerUnitOfWork(), FakePanel()
    order_id, server_id = _ready_server(uow, panel)
    panel.action_errors = [PanelError(400, "DisplayException", "Cannot delete a backup that is marked as locked.")]
    await _deliver(_converge(panel), uow, _desired(order_id, DesiredServerState.TERMINATED, 5))
    (failed,) = uow.events(ServerActionFailed)
    assert failed.payload.reason == "terminate_failed" and "locked" in failed.payload.message
    assert server_id in panel.servers
    assert [m.queue for m in uow.messages()] == [f"{QUEUE}.dlq"]


def test_next_step_never_touches_an_install_and_never_unsuspends_a_failed_one() -> None:
    limits = SMALL.model_dump()
    features = FEATURES.model_dump()
    suspended = Desired(DesiredServerState.SUSPENDED, 1, limits, features)
    running = Desired(DesiredServerState.RUNNING, 1, limits, features)
    assert next_step(suspended, Observed("installing", limits, features)) == Step.WAIT
    assert next_step(running, Observed("install_failed", limits, features)) == Step.BLOCKED
    assert next_step(running, None) == Step.VANISHED
    assert next_step(Desired(DesiredServerState.TERMINATED, 1, limits, features), None) == Step.DONE
    assert next_step(running, Observed("suspended", limits, features)) == Step.UNSUSPEND
    assert next_step(running, Observed(None, {**limits, "memory": 1}, features)) == Step.RESIZE


def test_the_build_body_is_never_partial() -> None:
    desired = Desired(DesiredServerState.RUNNING, 1, SMALL.model_dump(), FEATURES.model_dump())
    body = build_body(desired, {"allocation": 7})
    assert body == {
        "allocation": 7,
        "memory": 1024,
        "swap": 0,
        "disk": 5120,
        "io": 500,
        "cpu": 100,
        "threads": None,
        "feature_limits": {"databases": 0, "allocations": 0, "backups": 0},
    }


async def test_a_refused_deletion_is_forced_only_by_an_operators_replay() -> None:
    uow, panel = FakeProvisionerUnitOfWork(), FakePanel()
    order_id, server_id = _ready_server(uow, panel)
    converge = _converge(panel, delays=())
    event = _desired(order_id, DesiredServerState.TERMINATED, 5)
    refused = PanelError(504, "DaemonConnectionException", "Could not establish a connection to the machine")
    panel.action_errors = [refused] * 2
    await _deliver(converge, uow, event)
    assert server_id in panel.servers and uow.events(ServerActionFailed)
    await _deliver(converge, uow, event, **{REPLAY_COUNT: 1, FORCE_DELETE: "true"})
    assert server_id not in panel.servers
    assert panel.calls.count("delete_server_force") == 1
    (terminated,) = uow.events(ServerTerminated)
    assert terminated.payload.forced is True
