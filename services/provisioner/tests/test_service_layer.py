"""The provisioner's decisions with the in-memory unit of work and a small fake panel: no database, no
broker, no HTTP. OrderPaid goes through the real ``Subscription`` (as the consumer hands it over), so
the delivery's headers (replay count, retry token, broker annotations) are read as in production."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from provisioner.adapters.eggs import EggCache
from provisioner.adapters.tables import ProvisioningRow
from provisioner.domain.failures import classify
from provisioner.domain.panel import PanelError, PanelFieldError, PanelServer, PanelUnreachable
from provisioner.domain.provisioning import ProvisioningStatus
from provisioner.domain.retry import RetryPolicy
from provisioner.entrypoints.consumers import order_paid_subscription, order_refunded_subscription
from provisioner.queues import PROVISIONER_ORDER_PAID
from provisioner.service_layer.install_watch import InstallWatcher
from provisioner.service_layer.panel_work import ServerOutcome
from provisioner.service_layer.provision import (
    CONSUMER,
    RETRY_HEADER,
    RETRY_TOKEN_HEADER,
    ProvisionOrderPaid,
    fail,
    record_created,
    retry_later,
)
from provisioner.service_layer.refunded import SuspendRefunded
from provisioner.testing import FakePanel, FakeProvisionerUnitOfWork, order_paid
from spawnpoint_contracts import (
    Event,
    FailureReason,
    OrderPaid,
    OrderRefunded,
    OrderRefundedPayload,
    ProvisionFailed,
    ProvisioningReplayed,
    ProvisioningRetryScheduled,
    ServerCreated,
    ServerCreatedPayload,
    ServerInstalled,
)
from spawnpoint_kit.messaging.delivery import DeadLetter, Delivery
from spawnpoint_kit.messaging.messages import QueueMessage
from spawnpoint_kit.messaging.topology import Topology

pytestmark = pytest.mark.unit

QUEUE = "provisioner.order-paid"
RETRY_30S = f"{QUEUE}.retry.30s"
RETRY_120S = f"{QUEUE}.retry.120s"
DLQ = f"{QUEUE}.dlq"
NO_ROOM = PanelError(400, "NoViableNodeException", "no node has room")


def _delivery(event: Event, headers: dict[str, Any] | None = None, *, redelivered: bool = False) -> Delivery:
    return Delivery.of(
        event, QUEUE, headers={"traceparent": "00-trace-span-01", **(headers or {})}, redelivered=redelivered
    )


def _from_delay_queue(message: QueueMessage) -> Delivery:
    """A delayed retry as the work queue receives it back: the staged copy plus the broker's annotations."""
    return Delivery(
        QUEUE,
        message.body,
        {**message.headers, "x-death": [{"queue": message.queue, "reason": "expired"}]},
        str(message.message_id),
        message.correlation_id,
        message.queue,
        False,
    )


def _provision(panel: FakePanel, *, attempts: int = 1, delays: tuple[int, ...] = (30, 120)) -> ProvisionOrderPaid:
    return ProvisionOrderPaid(
        panel=panel,
        eggs=EggCache(panel),
        retry=RetryPolicy(
            attempts=attempts, initial_seconds=0.01, max_wait_seconds=0.01, jitter_seconds=0.0, broker_delays=delays
        ),
        topology=Topology(""),
        queue=PROVISIONER_ORDER_PAID,
        install_deadline=timedelta(hours=1),
        first_install_check=timedelta(seconds=2),
    )


async def _deliver(
    provision: ProvisionOrderPaid, uow: FakeProvisionerUnitOfWork, event: Event, delivery: Delivery
) -> None:
    """Hand ``event`` over as the kit's consumer does (the table picks the handler, ``uow.delivery`` is set)."""
    await order_paid_subscription(provision, lambda: uow).handle(event, delivery)


def _row(uow: FakeProvisionerUnitOfWork, event: OrderPaid) -> ProvisioningRow:
    return uow.fake_provisionings.rows[event.order_id]


def _status(row: ProvisioningRow) -> ProvisioningStatus:
    """The row's status now (a function call, so mypy does not keep an earlier assert's narrowing)."""
    return row.status


# OrderPaid: one server per order ------------------------------------------------------------------


async def test_the_first_delivery_creates_the_server_and_records_server_created_once() -> None:
    uow, panel, event = FakeProvisionerUnitOfWork(), FakePanel(), order_paid()
    provision = _provision(panel)
    await _deliver(provision, uow, event, _delivery(event))

    assert panel.calls.count("create_server") == 1
    assert panel.create_bodies[0]["external_id"] == str(event.order_id), "the order id is the panel's idempotency key"
    (created,) = uow.events(ServerCreated)
    row = _row(uow, event)
    assert created.payload.adopted is False and created.payload.external_id == str(event.order_id)
    assert (created.payload.server_id, created.payload.panel_user_id) == (row.server_id, 7)
    assert created.causation_id == event.event_id and created.correlation_id == "corr-1"
    assert row.status == ProvisioningStatus.INSTALLING and row.attempts == 1 and row.install_checks == 0
    assert row.install_started_at is not None and row.install_deadline is not None and row.next_check_at is not None
    assert row.install_deadline - row.install_started_at == timedelta(hours=1)
    assert row.next_check_at - row.install_started_at == timedelta(seconds=2)
    assert (CONSUMER, f"{event.event_id}:r0") in uow.inbox
    assert uow.commits == 2, "decide, then record: two transactions around the panel work"
    assert not uow.messages()

    await _deliver(provision, uow, event, _delivery(event, redelivered=True))
    assert panel.calls.count("create_server") == 1 and len(uow.events(ServerCreated)) == 1


async def test_the_first_attempt_creates_without_looking_up_and_a_later_one_looks_up_first() -> None:
    uow, panel, event = FakeProvisionerUnitOfWork(), FakePanel(), order_paid()
    await _deliver(_provision(panel), uow, event, _delivery(event))
    assert panel.calls == ["ensure_user", "egg", "create_server"], "nothing of ours can exist before attempt 1"

    other, panel = order_paid(), FakePanel()
    provision = _provision(panel)
    panel.always_unreachable = True
    await _deliver(provision, uow, other, _delivery(other))  # attempt 1: a retry is scheduled
    (retry,) = uow.messages(RETRY_30S)
    panel.always_unreachable, panel.calls = False, []
    await _deliver(provision, uow, other, _from_delay_queue(retry))
    assert panel.calls[0] == "server_by_external_id", "an earlier attempt may have created it"


async def test_a_server_that_already_exists_on_the_panel_is_adopted_not_created() -> None:
    """A redelivery after a crash between the panel's create and the record: the look-up finds it."""
    uow, panel, event = FakeProvisionerUnitOfWork(), FakePanel(), order_paid()
    provision = _provision(panel)
    panel.always_unreachable = True
    await _deliver(provision, uow, event, _delivery(event))
    (retry,) = uow.messages(RETRY_30S)
    panel.always_unreachable, panel.calls = False, []
    existing = panel.add_server(str(event.order_id), user=99)  # the create had committed after all
    await _deliver(provision, uow, event, _from_delay_queue(retry))

    assert "create_server" not in panel.calls and "ensure_user" not in panel.calls
    (created,) = uow.events(ServerCreated)
    assert created.payload.adopted is True
    assert (created.payload.server_id, created.payload.panel_user_id) == (existing.id, 99)
    assert _row(uow, event).status == ProvisioningStatus.INSTALLING


async def test_a_server_made_outside_the_shops_records_is_adopted_on_the_first_attempt_too() -> None:
    """The first attempt does not look first; the panel's one server per external id refuses the create."""
    uow, panel, event = FakeProvisionerUnitOfWork(), FakePanel(), order_paid()
    existing = panel.add_server(str(event.order_id), user=99)  # e.g. the shop's database restored from a backup
    await _deliver(_provision(panel), uow, event, _delivery(event))

    assert len(panel.servers) == 1 and panel.calls[-2:] == ["create_server", "server_by_external_id"]
    (created,) = uow.events(ServerCreated)
    assert created.payload.adopted is True
    assert (created.payload.server_id, created.payload.panel_user_id) == (existing.id, 99)
    assert _row(uow, event).status == ProvisioningStatus.INSTALLING
    assert not uow.events(ProvisionFailed) and not uow.messages()


@pytest.mark.parametrize(
    "error",
    [
        PanelUnreachable("POST /servers: ReadTimeout"),
        PanelError(502, None, "bad gateway", envelope=False),
        PanelError(422, "ValidationException", "taken", [PanelFieldError("external_id", "unique", "taken")]),
    ],
    ids=["timeout", "5xx", "422-unique"],
)
async def test_a_create_whose_outcome_is_unknown_is_looked_up_again_and_adopted(error: Exception) -> None:
    uow, panel, event = FakeProvisionerUnitOfWork(), FakePanel(), order_paid()
    panel.create_failures = [(error, True)]
    await _deliver(_provision(panel), uow, event, _delivery(event))

    assert panel.calls.count("create_server") == 1 and len(panel.servers) == 1
    (created,) = uow.events(ServerCreated)
    assert created.payload.adopted is True
    assert _row(uow, event).status == ProvisioningStatus.INSTALLING
    assert not uow.messages() and not uow.events(ProvisionFailed)


@pytest.mark.parametrize("status", [ProvisioningStatus.INSTALLING, ProvisioningStatus.READY])
async def test_a_redelivery_of_an_order_already_installing_or_ready_does_nothing(status: ProvisioningStatus) -> None:
    uow, panel, event = FakeProvisionerUnitOfWork(), FakePanel(), order_paid()
    provision = _provision(panel)
    await _deliver(provision, uow, event, _delivery(event))
    row = _row(uow, event)
    row.status = status  # the install watcher may have finished it meanwhile
    before = (row.attempts, row.server_id, row.next_check_at, len(uow.committed_events))
    panel.calls.clear()

    await _deliver(provision, uow, event, _delivery(event, redelivered=True))
    assert panel.calls == [], "the row guards the panel: no lookup, no create"
    assert row.status == status
    assert (row.attempts, row.server_id, row.next_check_at, len(uow.committed_events)) == before
    assert not uow.messages()


async def test_an_operator_replay_of_a_failed_order_records_the_replay_and_works_again() -> None:
    uow, panel, event = FakeProvisionerUnitOfWork(), FakePanel(), order_paid()
    provision = _provision(panel, delays=(30,))
    panel.always_unreachable = True
    await _deliver(provision, uow, event, _delivery(event))
    (retry,) = uow.messages(RETRY_30S)
    await _deliver(provision, uow, event, _from_delay_queue(retry))
    row = _row(uow, event)
    assert row.status == ProvisioningStatus.FAILED and row.broker_retries == 1

    await _deliver(provision, uow, event, _delivery(event, redelivered=True))
    assert row.status == ProvisioningStatus.FAILED and row.attempts == 2, "only an operator's replay restarts it"

    panel.always_unreachable = False  # the panel is back; the operator replays
    await _deliver(provision, uow, event, _delivery(event, {"x-replay-count": 1, "x-replayed-at": "now"}))
    (replayed,) = uow.events(ProvisioningReplayed)
    assert replayed.payload.replay_count == 1 and replayed.payload.source_queue == QUEUE
    assert replayed.causation_id == event.event_id
    (created,) = uow.events(ServerCreated)
    assert created.payload.adopted is False
    assert _status(row) == ProvisioningStatus.INSTALLING
    assert (row.replay_count, row.attempts, row.broker_retries) == (1, 3, 0)
    assert (CONSUMER, f"{event.event_id}:r1") in uow.inbox, "a replay is a new generation for the inbox"


async def test_an_operator_replay_of_a_done_order_only_records_the_replay() -> None:
    uow, panel, event = FakeProvisionerUnitOfWork(), FakePanel(), order_paid()
    provision = _provision(panel)
    await _deliver(provision, uow, event, _delivery(event))
    row = _row(uow, event)
    panel.calls.clear()

    replay = _delivery(event, {"x-replay-count": 1})
    await _deliver(provision, uow, event, replay)
    (replayed,) = uow.events(ProvisioningReplayed)
    assert replayed.payload.replay_count == 1
    assert panel.calls == [] and len(uow.events(ServerCreated)) == 1
    assert row.status == ProvisioningStatus.INSTALLING and (row.replay_count, row.attempts) == (1, 1)

    await _deliver(provision, uow, event, replay)  # the same replay delivered again
    assert len(uow.events(ProvisioningReplayed)) == 1


async def test_a_stale_duplicate_while_a_delayed_retry_is_pending_is_skipped() -> None:
    uow, panel, event = FakeProvisionerUnitOfWork(), FakePanel(), order_paid()
    provision = _provision(panel)
    panel.always_unreachable = True
    await _deliver(provision, uow, event, _delivery(event))
    row = _row(uow, event)
    token = row.retry_token
    assert row.status == ProvisioningStatus.RETRY_SCHEDULED and token is not None
    panel.always_unreachable = False
    panel.calls.clear()
    committed = len(uow.committed_events)

    for stale in (_delivery(event, redelivered=True), _delivery(event, {RETRY_TOKEN_HEADER: str(uuid.uuid4())})):
        await _deliver(provision, uow, event, stale)
    assert panel.calls == [] and len(uow.committed_events) == committed
    assert row.status == ProvisioningStatus.RETRY_SCHEDULED and row.retry_token == token and row.attempts == 1

    (retry,) = uow.messages(RETRY_30S)
    await _deliver(provision, uow, event, _from_delay_queue(retry))
    assert _status(row) == ProvisioningStatus.INSTALLING and row.attempts == 2 and row.retry_token is None
    assert len(uow.events(ServerCreated)) == 1


# OrderPaid: failures ------------------------------------------------------------------------------


async def test_a_transient_failure_schedules_delayed_retries_then_fails_when_none_are_left() -> None:
    uow, panel, event = FakeProvisionerUnitOfWork(), FakePanel(), order_paid()
    provision = _provision(panel, attempts=2, delays=(30, 120))
    panel.always_unreachable = True
    first = _delivery(event, {"x-death": [{"queue": "elsewhere"}], "x-delivery-count": 1})
    await _deliver(provision, uow, event, first)

    assert panel.calls.count("create_server") == 2, "retried in-process first"
    row = _row(uow, event)
    assert row.status == ProvisioningStatus.RETRY_SCHEDULED and row.broker_retries == 1
    assert row.failure_reason == FailureReason.PANEL_UNAVAILABLE.value and row.last_error
    (retry,) = uow.messages(RETRY_30S)
    assert retry.headers[RETRY_TOKEN_HEADER] == str(row.retry_token) and retry.headers[RETRY_HEADER] == 1
    assert retry.headers["traceparent"] == "00-trace-span-01"
    assert "x-death" not in retry.headers and "x-delivery-count" not in retry.headers
    assert (retry.body, retry.message_id, retry.message_type) == (first.body, event.event_id, "OrderPaid")
    assert (retry.correlation_id, retry.order_id) == ("corr-1", event.order_id)
    (scheduled,) = uow.events(ProvisioningRetryScheduled)
    assert (scheduled.payload.attempt, scheduled.payload.delay_seconds) == (1, 30.0)
    assert scheduled.payload.reason == FailureReason.PANEL_UNAVAILABLE
    assert not uow.events(ProvisionFailed) and not uow.messages(DLQ)

    await _deliver(provision, uow, event, _from_delay_queue(retry))
    (second,) = uow.messages(RETRY_120S)
    assert second.headers[RETRY_HEADER] == 2 and second.headers[RETRY_TOKEN_HEADER] == str(row.retry_token)
    assert second.headers[RETRY_TOKEN_HEADER] != retry.headers[RETRY_TOKEN_HEADER] and "x-death" not in second.headers

    await _deliver(provision, uow, event, _from_delay_queue(second))
    assert _status(row) == ProvisioningStatus.FAILED and row.retry_token is None
    (failed,) = uow.events(ProvisionFailed)
    assert failed.payload.reason == FailureReason.PANEL_UNAVAILABLE and failed.payload.replayable is True
    assert failed.payload.attempts == 3 and "still failing after 2 delayed retries" in failed.payload.message
    (copy,) = uow.messages(DLQ)
    assert copy.headers["x-spawnpoint-reason"] == "panel_unavailable"
    assert RETRY_HEADER not in copy.headers and RETRY_TOKEN_HEADER not in copy.headers and "x-death" not in copy.headers
    assert len(uow.messages()) == 3 and panel.calls.count("create_server") == 6


@pytest.mark.parametrize(
    ("error", "reason", "replayable", "detail"),
    [
        (NO_ROOM, FailureReason.NO_CAPACITY, True, {}),
        (
            PanelError(
                422, "ValidationException", "bad", [PanelFieldError("environment.SERVER_JARFILE", "required", "x")]
            ),
            FailureReason.INVALID_EGG_VARIABLES,
            False,
            {"environment.SERVER_JARFILE": "required"},
        ),
        (KeyError("attributes"), FailureReason.INTERNAL_ERROR, True, {}),
    ],
    ids=["no-capacity", "invalid-egg-variables", "not-a-panel-answer"],
)
async def test_a_permanent_failure_fails_at_once_with_provision_failed_and_a_dead_letter_copy(
    error: Exception, reason: FailureReason, replayable: bool, detail: dict[str, str]
) -> None:
    uow, panel, event = FakeProvisionerUnitOfWork(), FakePanel(), order_paid()
    panel.create_failures = [(error, False)]
    stale_marks = {RETRY_HEADER: 3, RETRY_TOKEN_HEADER: str(uuid.uuid4())}
    delivery = _delivery(event, {"x-death": [{"queue": RETRY_30S}], "x-first-death-queue": RETRY_30S, **stale_marks})
    await _deliver(_provision(panel, attempts=4), uow, event, delivery)

    assert panel.calls.count("create_server") == 1, "a permanent failure never loops"
    row = _row(uow, event)
    assert row.status == ProvisioningStatus.FAILED and row.failure_reason == reason.value
    (failed,) = uow.events(ProvisionFailed)
    assert (failed.payload.reason, failed.payload.replayable, failed.payload.attempts) == (reason, replayable, 1)
    assert failed.payload.detail == detail and failed.causation_id == event.event_id
    (copy,) = uow.messages(DLQ)
    assert copy.headers["x-spawnpoint-reason"] == reason.value
    assert copy.headers["x-spawnpoint-detail"] == failed.payload.message
    assert copy.headers["x-spawnpoint-queue"] == QUEUE
    assert copy.headers["x-spawnpoint-attempts"] == 1 and copy.headers["x-spawnpoint-replayable"] is replayable
    assert copy.headers["traceparent"] == "00-trace-span-01" and copy.headers["event_type"] == "OrderPaid"
    assert not {"x-death", "x-first-death-queue", RETRY_HEADER, RETRY_TOKEN_HEADER} & set(copy.headers)
    assert (copy.body, copy.message_id, copy.order_id) == (delivery.body, event.event_id, event.order_id)
    assert not uow.messages(RETRY_30S) and not uow.events(ProvisioningRetryScheduled)


async def test_the_record_and_failure_phases_change_nothing_once_another_instance_recorded_the_server() -> None:
    uow, panel, event = FakeProvisionerUnitOfWork(), FakePanel(), order_paid()
    await _deliver(_provision(panel), uow, event, _delivery(event))
    row = _row(uow, event)
    recorded = (row.status, row.server_id, row.install_started_at, len(uow.committed_events), set(uow.inbox))
    other = ServerOutcome(PanelServer(77, "u-77", "id77", str(event.order_id), "installing", 1, 1), 1, adopted=True)
    uow.delivery = _delivery(event)

    async with uow:
        await record_created(
            event, uow, other, install_deadline=timedelta(hours=1), first_install_check=timedelta(seconds=2)
        )
        await retry_later(
            event,
            uow,
            classify(PanelUnreachable("x")),
            PanelUnreachable("x"),
            policy=RetryPolicy(),
            delay_queue=lambda delay: f"{QUEUE}.retry.{delay}s",
        )
        await fail(event, uow, classify(NO_ROOM), NO_ROOM)
        await uow.commit()
    assert (row.status, row.server_id, row.install_started_at, len(uow.committed_events), set(uow.inbox)) == recorded
    assert not uow.messages()


async def test_an_event_other_than_order_paid_is_dead_lettered_by_the_kit_as_unexpected() -> None:
    uow, panel, paid = FakeProvisionerUnitOfWork(), FakePanel(), order_paid()
    stray = ServerCreated.caused_by(
        paid,
        producer="provisioner",
        payload=ServerCreatedPayload(server_id=1, server_uuid="u", identifier="i", external_id="e", panel_user_id=1),
    )
    with pytest.raises(DeadLetter) as dead:
        await _deliver(_provision(panel), uow, stray, _delivery(stray))
    assert dead.value.reason == "unexpected_event"
    assert panel.calls == [] and not uow.fake_provisionings.rows and uow.commits == 0


async def test_the_handler_refuses_to_run_without_its_delivery() -> None:
    uow, panel, event = FakeProvisionerUnitOfWork(), FakePanel(), order_paid()
    with pytest.raises(RuntimeError, match="delivery"):
        await _provision(panel)(event, uow)
    assert panel.calls == [] and uow.commits == 0


# the install watcher ------------------------------------------------------------------------------


def _installing(
    uow: FakeProvisionerUnitOfWork, panel: FakePanel, *, deadline_in: timedelta = timedelta(hours=1)
) -> tuple[ProvisioningRow, PanelServer]:
    """An order whose server was created and is being watched, its first check due now."""
    order_id = uuid.uuid4()
    server = panel.add_server(str(order_id))
    now = datetime.now(UTC)
    row = ProvisioningRow(
        order_id=order_id,
        status=ProvisioningStatus.INSTALLING,
        correlation_id="corr-w",
        paid_event_id=uuid.uuid4(),
        order_snapshot={},
        attempts=1,
        server_id=server.id,
        server_uuid=server.uuid,
        identifier=server.identifier,
        install_started_at=now - timedelta(minutes=5),
        install_deadline=now + deadline_in,
        next_check_at=now - timedelta(seconds=1),
    )
    uow.fake_provisionings.rows[order_id] = row
    return row, server


def _watcher(uow: FakeProvisionerUnitOfWork, panel: FakePanel, *, poll_seconds: float = 2.0) -> InstallWatcher:
    return InstallWatcher(lambda: uow, panel, poll_seconds=poll_seconds, max_interval_seconds=30.0)


async def test_an_installed_server_is_ready_and_announced() -> None:
    uow, panel = FakeProvisionerUnitOfWork(), FakePanel()
    row, server = _installing(uow, panel)
    panel.set_status(server.id, None)
    await _watcher(uow, panel).check(row.order_id)

    assert row.status == ProvisioningStatus.READY and row.install_checks == 1
    (installed,) = uow.events(ServerInstalled)
    assert (installed.payload.server_id, installed.payload.identifier) == (server.id, server.identifier)
    assert (installed.order_id, installed.correlation_id, installed.causation_id) == (
        row.order_id,
        "corr-w",
        row.paid_event_id,
    )
    assert not uow.events(ProvisionFailed)


@pytest.mark.parametrize(
    ("panel_status", "vanished", "reason", "message"),
    [
        ("install_failed", False, FailureReason.INSTALL_FAILED, "installation failed (install_failed)"),
        ("reinstall_failed", False, FailureReason.INSTALL_FAILED, "installation failed (reinstall_failed)"),
        ("installing", True, FailureReason.INSTALL_FAILED, "vanished from the panel"),
    ],
)
async def test_a_failed_or_vanished_install_fails_the_order(
    panel_status: str, vanished: bool, reason: FailureReason, message: str
) -> None:
    uow, panel = FakeProvisionerUnitOfWork(), FakePanel()
    row, server = _installing(uow, panel)
    panel.set_status(server.id, panel_status)
    if vanished:
        del panel.servers[server.id]
    await _watcher(uow, panel).check(row.order_id)

    assert row.status == ProvisioningStatus.FAILED and row.failure_reason == reason.value
    (failed,) = uow.events(ProvisionFailed)
    assert failed.payload.reason == reason and message in failed.payload.message
    assert failed.payload.replayable is False and failed.payload.server_id == server.id
    assert failed.payload.attempts == 1 and failed.causation_id == row.paid_event_id
    assert not uow.messages(), "the watcher dead-letters nothing: there is no message to replay"


async def test_an_install_still_running_at_the_deadline_times_out() -> None:
    uow, panel = FakeProvisionerUnitOfWork(), FakePanel()
    row, _ = _installing(uow, panel, deadline_in=timedelta(seconds=-1))
    await _watcher(uow, panel).check(row.order_id)

    assert row.status == ProvisioningStatus.FAILED and row.failure_reason == FailureReason.INSTALL_TIMEOUT.value
    (failed,) = uow.events(ProvisionFailed)
    assert failed.payload.reason == FailureReason.INSTALL_TIMEOUT and "did not finish within 300 s" in (
        failed.payload.message
    )
    assert "'installing'" in failed.payload.message


@pytest.mark.parametrize("unreachable", [False, True], ids=["still-installing", "panel-unreachable"])
async def test_an_install_still_running_is_checked_again_later_never_past_its_deadline(unreachable: bool) -> None:
    uow, panel = FakeProvisionerUnitOfWork(), FakePanel()
    row, _ = _installing(uow, panel)
    slow, _ = _installing(uow, panel, deadline_in=timedelta(seconds=1))
    if unreachable:
        panel.server_errors = [PanelUnreachable("GET /servers/{id}: ConnectTimeout")] * 2
    watcher = _watcher(uow, panel, poll_seconds=10.0)
    before = datetime.now(UTC)
    await watcher.check(row.order_id)
    await watcher.check(slow.order_id)

    assert not uow.committed_events
    assert row.status == slow.status == ProvisioningStatus.INSTALLING
    assert row.install_checks == slow.install_checks == 1
    assert row.next_check_at is not None and row.next_check_at - before >= timedelta(seconds=13)
    assert slow.next_check_at is not None and slow.install_deadline is not None
    assert slow.next_check_at <= slow.install_deadline, "the timeout is reported on time"


async def test_a_round_leases_only_the_due_installs_and_says_whether_any_were_due() -> None:
    uow, panel = FakeProvisionerUnitOfWork(), FakePanel()
    due, server = _installing(uow, panel)
    later, _ = _installing(uow, panel)
    later.next_check_at = datetime.now(UTC) + timedelta(minutes=1)
    panel.set_status(server.id, None)
    watcher = _watcher(uow, panel)

    assert await watcher.watch_round() is True
    assert due.status == ProvisioningStatus.READY and later.status == ProvisioningStatus.INSTALLING
    assert panel.calls.count("server") == 1 and len(uow.events(ServerInstalled)) == 1
    assert await watcher.watch_round() is False, "nothing due: the job waits poll_seconds"
    assert panel.calls.count("server") == 1


async def test_a_lease_hides_an_install_from_the_next_round_until_it_expires() -> None:
    uow, panel = FakeProvisionerUnitOfWork(), FakePanel()
    row, _ = _installing(uow, panel)
    watcher = InstallWatcher(lambda: uow, panel, poll_seconds=2.0, lease_seconds=60.0)
    assert [leased.order_id for leased in await watcher.due()] == [row.order_id]
    assert row.next_check_at is not None and row.next_check_at > datetime.now(UTC) + timedelta(seconds=55)
    assert await watcher.due() == []


async def test_an_order_no_longer_installing_is_not_checked() -> None:
    uow, panel = FakeProvisionerUnitOfWork(), FakePanel()
    row, _ = _installing(uow, panel)
    row.status = ProvisioningStatus.READY
    await _watcher(uow, panel).check(row.order_id)
    await _watcher(uow, panel).check(uuid.uuid4())
    assert panel.calls == [] and not uow.committed_events and row.install_checks == 0


async def test_an_overdue_install_whose_panel_errors_is_asked_again_after_a_pause_not_at_once() -> None:
    """Finding 12: past its deadline, a row whose check failed was due again immediately, round after round."""
    uow, panel = FakeProvisionerUnitOfWork(), FakePanel()
    overdue, _ = _installing(uow, panel, deadline_in=timedelta(seconds=-5))
    panel.server_errors = [PanelUnreachable("GET /servers/{id}: ConnectTimeout")]
    before = datetime.now(UTC)
    await _watcher(uow, panel, poll_seconds=10.0).check(overdue.order_id)
    assert overdue.status == ProvisioningStatus.INSTALLING and not uow.committed_events
    assert overdue.next_check_at is not None and overdue.next_check_at - before >= timedelta(seconds=10)


# finding 8: a refunded order gets no server, and the one it has is suspended -----------------------------


def _refunded(event: OrderPaid) -> OrderRefunded:
    return OrderRefunded(
        order_id=event.order_id,
        correlation_id=event.correlation_id,
        producer="payment-service",
        payload=OrderRefundedPayload(refund_id="re_1", amount=500, currency="eur", reason="provisioning_failed"),
    )


async def test_a_replay_of_a_refunded_order_is_refused_and_dead_lettered_with_the_reason() -> None:
    """Finding 8: the provisioner's decision knew nothing of refunds; a replay created a server for it."""
    uow, panel = FakeProvisionerUnitOfWork(), FakePanel()
    provision = _provision(panel)
    event = order_paid()
    panel.create_failures = [(NO_ROOM, False)]
    await _deliver(provision, uow, event, _delivery(event))
    assert _status(_row(uow, event)) == ProvisioningStatus.FAILED
    refund = _refunded(event)
    await order_refunded_subscription(lambda: uow).handle(refund, _delivery(refund))
    assert _row(uow, event).refunded_at is not None
    panel.calls.clear()
    await _deliver(provision, uow, event, _delivery(event, {"x-replay-count": 1}))
    assert panel.calls == [], "nothing was asked of the panel"
    refused = [m for m in uow.messages(DLQ) if m.headers["x-spawnpoint-reason"] == "order_refunded"]
    assert len(refused) == 1 and "refunded" in refused[0].headers["x-spawnpoint-detail"]
    await _deliver(provision, uow, event, _delivery(event, redelivered=True))
    assert panel.calls == [] and _status(_row(uow, event)) == ProvisioningStatus.FAILED


def _suspensions(uow: FakeProvisionerUnitOfWork, panel: FakePanel) -> SuspendRefunded:
    return SuspendRefunded(lambda: uow, panel, poll_seconds=5)


async def test_a_refunded_orders_server_is_suspended_once_the_panel_confirms_it_and_never_mid_install() -> None:
    uow, panel = FakeProvisionerUnitOfWork(), FakePanel()
    row, server = _installing(uow, panel)
    row.status = ProvisioningStatus.FAILED  # install_timeout: the panel may still be installing
    row.refunded_at = datetime.now(UTC)
    row.next_check_at = None
    jobs = _suspensions(uow, panel)
    await jobs.round()
    assert row.suspended_at is None and "suspend" not in panel.calls, "never while the panel is installing"
    panel.set_status(server.id, None)
    row.next_check_at = None
    panel.suspend_errors = [PanelUnreachable("POST /servers/1/suspend: ConnectTimeout")]
    await jobs.round()
    assert row.suspended_at is None and row.next_check_at is not None, "tried again later"
    row.next_check_at = None
    await jobs.round()
    assert panel.servers[server.id].status == "suspended" and row.suspended_at is not None
    calls = len(panel.calls)
    await jobs.round()
    assert len(panel.calls) == calls, "done once"


async def test_a_refunded_order_whose_server_is_gone_needs_nothing() -> None:
    uow, panel = FakeProvisionerUnitOfWork(), FakePanel()
    row, server = _installing(uow, panel)
    row.refunded_at, row.next_check_at = datetime.now(UTC), None
    del panel.servers[server.id]
    await _suspensions(uow, panel).round()
    assert row.suspended_at is not None and "suspend" not in panel.calls


async def test_a_delayed_retry_carries_only_headers_that_can_travel_again() -> None:
    """A header nobody could publish again (a NUL, an over-long value) made staging the retry fail; the
    message then looped to the broker's dead-letter queue instead of being retried."""
    uow, panel = FakeProvisionerUnitOfWork(), FakePanel()
    event = order_paid()
    panel.create_failures = [(PanelUnreachable("POST /servers: ConnectTimeout"), False)]
    await _deliver(_provision(panel), uow, event, _delivery(event, {"x-bad": "a\x00b", "x-long": "v" * 5000}))
    (retry,) = uow.messages(RETRY_30S)
    assert "x-bad" not in retry.headers and "x-long" not in retry.headers
    assert retry.headers["traceparent"] == "00-trace-span-01"
