"""DesiredServerStateChanged -> the panel made to match, exactly once and in the right order.

``ConvergeServer`` is the handler for ``provisioner.desired-state``. Like creation (``provision.py``) it
owns its transactions and calls the panel between two of them:

1. ``begin`` locks the order's ``server_states`` row and keeps the event's desired state if its version
   is higher than any seen. A lower version is stale (a newer decision exists): acknowledged, no panel
   call. A version already applied, or one dead-lettered and not replayed, needs nothing either. A server
   that does not exist yet or is still installing is left: the install watcher sends the latest desired
   state back to the queue once the install ended (``resend``), so a server that finishes installing while
   its rental is lapsed ends suspended, and an install is never overwritten by a suspension.
2. ``converge``, outside any transaction with tenacity's retries: read the server, take the one step
   ``domain.server_state.next_step`` names, read back (a 204 alone is not believed), until it matches.
3. ``record``: the applied state and version, and the events of what changed (``ServerSuspended``,
   ``ServerUnsuspended``, ``ServerResized``, ``ServerTerminated``), once: a redelivery after a crash
   between the panel's 204 and this commit finds the panel already matching, takes no step, and records
   it then. If a newer version arrived meanwhile it is sent back to the queue, so the panel ends in the
   newest state whatever the interleaving. A transient failure is retried through the broker's delay
   queues; a permanent one, or retries exhausted, is ``ServerActionFailed`` (``suspend_failed``, …) and a
   copy in the dead-letter queue that ``spawnctl dlq replay`` sends back.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from prometheus_client import Counter

from spawnpoint_contracts import (
    DesiredServerState,
    DesiredServerStateChanged,
    Event,
    FeatureLimits,
    Limits,
    ServerAction,
    ServerActionFailed,
    ServerActionFailedPayload,
    ServerResized,
    ServerResizedPayload,
    ServerSuspended,
    ServerSuspendedPayload,
    ServerTerminated,
    ServerTerminatedPayload,
    ServerUnsuspended,
    ServerUnsuspendedPayload,
)
from spawnpoint_kit.logs import get_logger
from spawnpoint_kit.messaging.delivery import Delivery
from spawnpoint_kit.messaging.headers import FORCE_DELETE
from spawnpoint_kit.messaging.messages import QueueMessage
from spawnpoint_kit.messaging.specs import QueueSpec
from spawnpoint_kit.messaging.topology import Topology
from spawnpoint_kit.messaging.wire import publishable_headers
from spawnpoint_kit.unit_of_work import count_after_commit

from ..adapters.locks import InProcessOrderLocks, OrderLocks
from ..adapters.tables import ServerStateRow
from ..domain.failures import classify
from ..domain.panel import Panel, PanelServer
from ..domain.provisioning import ProvisioningStatus
from ..domain.retry import RetryPolicy
from ..domain.server_state import Desired, Observed, Step, build_body, confirmed, next_step
from .provision import clean_headers
from .retrying import with_retries
from .unit_of_work import ProvisionerUnitOfWork

log = get_logger(__name__)
PRODUCER = "provisioner"
MAX_STEPS = 4
"""A resize, then a suspension change, with room for one panel that needed a second look."""

ACTIONS = Counter(
    "provisioner_server_actions_total",
    "Panel actions of a server's life, by action (suspend, unsuspend, resize, terminate) and outcome "
    "(done, already, retry_scheduled, failed)",
    ["action", "outcome"],
)
CONVERGENCE = Counter(
    "provisioner_desired_states_total",
    "Desired-state deliveries, by what they led to (converged, stale, applied_already, waiting_install, "
    "waiting_server, dead_lettered, blocked, vanished)",
    ["outcome"],
)


class NotConfirmed(Exception):
    """The panel answered the call but its read-back does not show the change (it can lie)."""


@dataclass(frozen=True)
class Work:
    order_id: uuid.UUID
    server_id: int
    version: int
    desired: Desired
    force: bool = False
    """An operator's replay asked for ``DELETE /servers/{id}/force`` (``FORCE_DELETE``)."""


@dataclass(frozen=True)
class Converged:
    steps: tuple[Step, ...]
    final: Step
    """DONE, or why no step could be taken (WAIT, BLOCKED, VANISHED)."""


def desired_of(row: ServerStateRow) -> Desired:
    return Desired(
        state=DesiredServerState(row.desired_state),
        version=row.desired_version,
        limits=dict(row.desired_limits.get("limits") or {}),
        feature_limits=dict(row.desired_limits.get("feature_limits") or {}),
    )


def observed_of(server: PanelServer | None) -> Observed | None:
    if server is None:
        return None
    return Observed(status=server.status, limits=server.limits, feature_limits=server.feature_limits)


def new_state(event: DesiredServerStateChanged) -> ServerStateRow:
    payload = event.payload
    now = datetime.now(UTC)
    return ServerStateRow(
        order_id=event.order_id,
        desired_state=payload.state.value,
        desired_version=payload.version,
        desired_reason=payload.reason.value,
        desired_limits={
            "plan_id": payload.plan_id,
            "limits": payload.limits.model_dump(mode="json"),
            "feature_limits": payload.feature_limits.model_dump(mode="json"),
        },
        desired_event=event.model_dump(mode="json"),
        created_at=now,
        updated_at=now,
    )


@dataclass(frozen=True)
class ConvergeServer:
    """The DesiredServerStateChanged handler (module docstring)."""

    panel: Panel
    retry: RetryPolicy
    topology: Topology
    queue: QueueSpec
    """``provisioner.desired-state``: where a resent desired state goes; its delay queues for retries."""
    locks: OrderLocks = field(default_factory=InProcessOrderLocks)
    """Held from ``begin`` to ``record``: a duplicate delivery of the order waits, then finds it done."""

    async def __call__(self, event: DesiredServerStateChanged, uow: ProvisionerUnitOfWork) -> None:
        async with self.locks(event.order_id):
            await self._handle(event, uow)

    async def _handle(self, event: DesiredServerStateChanged, uow: ProvisionerUnitOfWork) -> None:
        async with uow:
            work = await begin(event, uow)
            await uow.commit()
        if work is None:
            return
        attempted: list[ServerAction] = []
        try:
            result = await with_retries(
                self.retry,
                lambda: converge(self.panel, work.server_id, work.desired, attempted=attempted, force=work.force),
            )
        except Exception as exc:
            async with uow:
                action = attempted[-1] if attempted else _intended_action(work.desired)
                await self._failed(event, uow, work, action, exc)
                await uow.commit()
            return
        async with uow:
            await record(event, uow, work, result, resend=self.resend)
            await uow.commit()

    def resend(self, uow: ProvisionerUnitOfWork, row: ServerStateRow) -> None:
        """Send the order's latest desired state to the work queue again, on commit."""
        uow.send(resend_message(self.topology.queue_name(self.queue), row))

    async def _failed(
        self,
        event: DesiredServerStateChanged,
        uow: ProvisionerUnitOfWork,
        work: Work,
        action: ServerAction,
        cause: Exception,
    ) -> None:
        failure = classify(cause)
        transient = failure.transient or isinstance(cause, NotConfirmed)
        message = str(cause)[:500] if isinstance(cause, NotConfirmed) else failure.message
        delivery = _delivery_of(uow)
        row = await uow.server_states.lock(work.order_id)
        if row is None or row.desired_version != work.version or row.applied_version >= work.version:
            return  # a newer decision arrived meanwhile: its own delivery converges to it
        delay = self.retry.broker_delay(row.broker_retries) if transient else None
        if delay is not None:
            row.broker_retries += 1
            row.failure_reason = f"{action.value}_failed"
            row.last_error = str(cause)[:2000]
            uow.send(
                QueueMessage(
                    queue=self.topology.retry_queue_name(self.queue, delay),
                    body=delivery.body,
                    message_id=event.event_id,
                    message_type=event.event_type,
                    headers=publishable_headers(clean_headers(delivery.headers))[0],
                    correlation_id=event.correlation_id,
                    order_id=event.order_id,
                )
            )
            count_after_commit(uow, ACTIONS.labels(action.value, "retry_scheduled").inc)
            log.warning("panel action failed; retry scheduled", action=action.value, delay_seconds=delay, error=message)
            return
        if transient:
            message = f"{message} (still failing after {row.broker_retries} delayed retries)"
        reason = f"{action.value}_failed"
        row.failed_version = work.version
        row.failure_reason = reason
        row.last_error = str(cause)[:2000]
        row.updated_at = datetime.now(UTC)
        uow.publish(
            ServerActionFailed.caused_by(
                event,
                producer=PRODUCER,
                payload=ServerActionFailedPayload(
                    action=action,
                    reason=reason,
                    message=message,
                    attempts=row.attempts,
                    replayable=True,
                    desired_version=work.version,
                    server_id=work.server_id,
                ),
            )
        )
        uow.dead_letter(
            reason, message, delivery=dataclasses.replace(delivery, headers=clean_headers(delivery.headers))
        )
        count_after_commit(uow, ACTIONS.labels(action.value, "failed").inc)
        count_after_commit(uow, CONVERGENCE.labels("dead_lettered").inc)
        log.warning("panel action failed; dead-lettered", action=action.value, reason=reason, error=message)


# phase 1 -------------------------------------------------------------------------------------------


async def begin(event: DesiredServerStateChanged, uow: ProvisionerUnitOfWork) -> Work | None:
    """Keep the event's desired state if it is the newest; the work to do now, or None."""
    delivery = _delivery_of(uow)
    fresh = new_state(event)
    row = await uow.server_states.lock_or_create(fresh)
    now = datetime.now(UTC)
    replay = delivery.replay_count > row.replay_count
    if replay:
        row.replay_count = delivery.replay_count
        row.failed_version = None
        row.broker_retries = 0
    version = event.payload.version
    if version > row.desired_version:
        row.desired_state, row.desired_version = fresh.desired_state, fresh.desired_version
        row.desired_reason, row.desired_limits, row.desired_event = (
            fresh.desired_reason,
            fresh.desired_limits,
            fresh.desired_event,
        )
        row.failed_version = None
        row.broker_retries = 0
    elif version < row.desired_version:
        return _skip(uow, row, "stale", now, version=version)
    if row.applied_version >= row.desired_version:
        return _skip(uow, row, "applied_already", now)
    if row.failed_version == row.desired_version:
        return _skip(uow, row, "dead_lettered", now)
    provisioning = await uow.provisionings.get(event.order_id)
    if provisioning is None or provisioning.server_id is None:
        row.waiting = "server"
        return _skip(uow, row, "waiting_server", now)
    if provisioning.status == ProvisioningStatus.INSTALLING:
        row.waiting = "install"
        return _skip(uow, row, "waiting_install", now)
    row.waiting = None
    row.attempts += 1
    row.updated_at = now
    force = replay and str(delivery.headers.get(FORCE_DELETE, "")).lower() == "true"
    return Work(event.order_id, provisioning.server_id, row.desired_version, desired_of(row), force=force)


def _skip(
    uow: ProvisionerUnitOfWork, row: ServerStateRow, outcome: str, now: datetime, **fields: object
) -> Work | None:
    """Nothing to do for this delivery now (counted and logged); None, for ``begin`` to return."""
    row.updated_at = now
    count_after_commit(uow, CONVERGENCE.labels(outcome).inc)
    log.info("desired server state: nothing to do now", outcome=outcome, desired_version=row.desired_version, **fields)
    return None


# phase 2 -------------------------------------------------------------------------------------------


async def converge(
    panel: Panel,
    server_id: int,
    desired: Desired,
    *,
    attempted: list[ServerAction] | None = None,
    force: bool = False,
) -> Converged:
    """Read, act, read back, until the panel matches ``desired`` or no step can be taken. The actions
    tried are appended to ``attempted`` (the last names the failure when one is raised)."""
    attempted = attempted if attempted is not None else []
    steps: list[Step] = []
    server = await panel.server(server_id)
    for _ in range(MAX_STEPS):
        step = next_step(desired, observed_of(server))
        action = step.action
        if action is None:
            return Converged(tuple(steps), step)
        attempted.append(action)
        server = await _act(panel, server_id, step, desired, server, force=force)
        if not confirmed(step, desired, observed_of(server)):
            shown = server.status if server is not None else "no server"
            raise NotConfirmed(f"the panel accepted {action.value} but still shows {shown!r}")
        steps.append(step)
        if step == Step.TERMINATE:
            return Converged(tuple(steps), Step.DONE)
    raise NotConfirmed(f"the panel did not converge in {MAX_STEPS} steps")


async def _act(
    panel: Panel, server_id: int, step: Step, desired: Desired, server: PanelServer | None, *, force: bool = False
) -> PanelServer | None:
    """One panel call, then the read-back."""
    if step == Step.SUSPEND:
        await panel.suspend(server_id)
    elif step == Step.UNSUSPEND:
        await panel.unsuspend(server_id)
    elif step == Step.RESIZE:
        if server is None:  # next_step resizes only a server it read
            raise NotConfirmed("the server was gone before its resize")
        current = {"allocation": server.allocation}
        if "oom_disabled" in server.limits:
            current["oom_disabled"] = server.limits["oom_disabled"]
        await panel.update_build(server_id, build_body(desired, current))
    elif step == Step.TERMINATE:
        await panel.delete_server(server_id, force=force)
        return await panel.server(server_id)
    return await panel.server(server_id)


def _intended_action(desired: Desired) -> ServerAction:
    return {
        DesiredServerState.RUNNING: ServerAction.UNSUSPEND,
        DesiredServerState.SUSPENDED: ServerAction.SUSPEND,
        DesiredServerState.TERMINATED: ServerAction.TERMINATE,
    }[desired.state]


# phase 3 -------------------------------------------------------------------------------------------


async def record(
    event: DesiredServerStateChanged,
    uow: ProvisionerUnitOfWork,
    work: Work,
    result: Converged,
    *,
    resend: Callable[[ProvisionerUnitOfWork, ServerStateRow], None],
) -> None:
    row = await uow.server_states.lock(work.order_id)
    if row is None:
        return
    apply_result(event, uow, row, work, result, resend=resend)


def apply_result(
    event: DesiredServerStateChanged,
    uow: ProvisionerUnitOfWork,
    row: ServerStateRow,
    work: Work,
    result: Converged,
    *,
    resend: Callable[[ProvisionerUnitOfWork, ServerStateRow], None],
) -> None:
    """``record`` on the locked row: the applied state and its events, or why it cannot converge now."""
    now = datetime.now(UTC)
    row.updated_at = now
    if result.final != Step.DONE:
        row.waiting = {Step.WAIT: "install", Step.BLOCKED: "blocked", Step.VANISHED: "vanished"}[result.final]
        count_after_commit(uow, CONVERGENCE.labels(row.waiting if row.waiting != "install" else "waiting_install").inc)
        log.warning("the server cannot be converged now", why=result.final.value, desired_state=row.desired_state)
        return
    if row.applied_version < work.version:
        _publish_changes(event, uow, row, work, result)
        row.applied_state = work.desired.state.value
        row.applied_version = work.version
        row.applied_limits = {"limits": work.desired.limits, "feature_limits": work.desired.feature_limits}
        row.failure_reason = row.last_error = None
        row.broker_retries = 0
        row.waiting = None
        count_after_commit(uow, CONVERGENCE.labels("converged").inc)
    if row.desired_version > work.version:
        resend(uow, row)  # a newer decision arrived while the panel was being changed: converge again


def _publish_changes(
    event: DesiredServerStateChanged, uow: ProvisionerUnitOfWork, row: ServerStateRow, work: Work, result: Converged
) -> None:
    """The events of what the panel now shows differently from what was last told (once per change)."""
    desired = work.desired
    state = desired.state.value
    out: list[Event] = []
    if state != row.applied_state:
        if desired.state == DesiredServerState.SUSPENDED:
            out.append(
                ServerSuspended.caused_by(
                    event,
                    producer=PRODUCER,
                    payload=ServerSuspendedPayload(
                        server_id=work.server_id, desired_version=work.version, reason=row.desired_reason
                    ),
                )
            )
        elif desired.state == DesiredServerState.RUNNING and row.applied_state == DesiredServerState.SUSPENDED.value:
            out.append(
                ServerUnsuspended.caused_by(
                    event,
                    producer=PRODUCER,
                    payload=ServerUnsuspendedPayload(
                        server_id=work.server_id, desired_version=work.version, reason=row.desired_reason
                    ),
                )
            )
        elif desired.state == DesiredServerState.TERMINATED:
            out.append(
                ServerTerminated.caused_by(
                    event,
                    producer=PRODUCER,
                    payload=ServerTerminatedPayload(
                        server_id=work.server_id,
                        desired_version=work.version,
                        already_gone=Step.TERMINATE not in result.steps,
                        forced=work.force and Step.TERMINATE in result.steps,
                    ),
                )
            )
    new_limits = {"limits": desired.limits, "feature_limits": desired.feature_limits}
    resized = Step.RESIZE in result.steps or (row.applied_limits is not None and row.applied_limits != new_limits)
    if resized and desired.state != DesiredServerState.TERMINATED:
        out.append(
            ServerResized.caused_by(
                event,
                producer=PRODUCER,
                payload=ServerResizedPayload(
                    server_id=work.server_id,
                    desired_version=work.version,
                    plan_id=str(row.desired_limits.get("plan_id") or ""),
                    limits=Limits.model_validate(desired.limits),
                    feature_limits=FeatureLimits.model_validate(desired.feature_limits),
                ),
            )
        )
    for message in out:
        uow.publish(message)
    for step in result.steps:
        if step.action is not None:
            count_after_commit(uow, ACTIONS.labels(step.action.value, "done").inc)
    if not result.steps:
        count_after_commit(uow, ACTIONS.labels(_intended_action(desired).value, "already").inc)


# the install's end -----------------------------------------------------------------------------------


def converge_on_install(uow: ProvisionerUnitOfWork, row: ServerStateRow, server: PanelServer) -> bool:
    """The install watcher has just read the installed ``server`` and holds the order's locked state
    ``row``, whose desired state waited for the install: when that read already shows the desired state
    (the usual case: running, with the plan's build the server was created with), record it as applied here,
    exactly as ``record`` would after the read convergence starts with, and say True. Otherwise (an action
    is needed, or the version was dead-lettered) False: the desired state goes back to the queue.

    Why: sending it back costs an outbox row, a publish, a delivery, two transactions and a panel read per
    order, to learn what this read already says."""
    if row.applied_version >= row.desired_version or row.failed_version == row.desired_version:
        return False
    desired = desired_of(row)
    if next_step(desired, observed_of(server)) != Step.DONE:
        return False
    event = DesiredServerStateChanged.model_validate(row.desired_event)
    row.attempts += 1
    row.waiting = None
    work = Work(row.order_id, server.id, row.desired_version, desired)
    apply_result(event, uow, row, work, Converged((), Step.DONE), resend=_never_resend)
    return True


def _never_resend(uow: ProvisionerUnitOfWork, row: ServerStateRow) -> None:
    raise AssertionError("the version applied at the install's end is the row's newest")


# helpers -------------------------------------------------------------------------------------------


def resend_message(queue: str, row: ServerStateRow) -> QueueMessage:
    """The latest desired state as it arrived, for the work queue again (the install watcher's and
    ``record``'s way to resume convergence)."""
    body = row.desired_event
    return QueueMessage(
        queue=queue,
        body=json.dumps(body).encode(),
        message_id=uuid.UUID(str(body["event_id"])),
        message_type=str(body["event_type"]),
        correlation_id=str(body.get("correlation_id") or ""),
        order_id=row.order_id,
    )


def _delivery_of(uow: ProvisionerUnitOfWork) -> Delivery:
    if uow.delivery is None:
        raise RuntimeError("DesiredServerStateChanged is handled with its delivery (the subscription sets it)")
    return uow.delivery
