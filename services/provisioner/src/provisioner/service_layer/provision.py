"""OrderPaid -> a server on the panel, exactly once per order.

``ProvisionOrderPaid`` is the handler registered for OrderPaid (``entrypoints/consumers.py``). It owns its
transactions (the panel is called between two of them), so it opens the unit of work once per phase:

1. ``begin``: lock (or create) the order's provisioning row and ``decide`` what this delivery means:
   first delivery or redelivery after a crash (work), the delayed retry the row waits for (work), a stale
   duplicate (ack, nothing), an order already installing or ready (ack, nothing), an operator's replay
   (record ProvisioningReplayed in the order's history, then work). Commit.
2. ``panel_work.ensure_server``, outside any transaction, with tenacity's in-process retries: look the
   server up by ``external_id`` (the order id) and adopt it, or create it (adopting after an unknown
   outcome or a 422 saying the external id is taken). A crash after the panel created the server and
   before step 3 committed is therefore harmless: the redelivered message adopts it, and so does a second
   provisioner instance handling a duplicate at the same time. The first try of an order's first attempt
   creates without looking first: no earlier attempt reached the panel (``begin`` committed none before).
3. One of, each locking the row again and committing:

   - ``record_created``: unless another instance got there first, record the server, the inbox entry
     and ServerCreated in one transaction. The install watcher takes it from there.
   - ``retry_later`` (a transient failure): park a copy of the message in a delay queue of the broker
     (``ProvisioningRetryScheduled``, growing delays); with no delay left, fail.
   - ``fail`` (a permanent failure): fail at once, without a retry loop.

Failing means, in one transaction: the row becomes ``failed``, ``ProvisionFailed`` (reason code, message,
attempt count, replayable) is staged, and a copy of the message goes to the dead-letter queue with the
reason in its headers. The row guards (``PROVISIONING.allows``) make that happen once per attempt, even
with two instances. The message is acknowledged once the handler returns, after its last commit.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import Counter

from spawnpoint_contracts import (
    OrderPaid,
    ProvisionFailed,
    ProvisionFailedPayload,
    ProvisioningReplayed,
    ProvisioningReplayedPayload,
    ProvisioningRetryScheduled,
    ProvisioningRetryScheduledPayload,
    ServerCreated,
    ServerCreatedPayload,
)
from spawnpoint_kit.logs import get_logger
from spawnpoint_kit.messaging.delivery import Delivery
from spawnpoint_kit.messaging.headers import BROKER_ANNOTATIONS
from spawnpoint_kit.messaging.messages import QueueMessage
from spawnpoint_kit.messaging.specs import QueueSpec
from spawnpoint_kit.messaging.topology import Topology
from spawnpoint_kit.messaging.wire import publishable_headers
from spawnpoint_kit.unit_of_work import count_after_commit

from ..adapters.tables import ProvisioningRow
from ..domain.failures import Classified, classify, field_details
from ..domain.panel import Eggs, Panel
from ..domain.provisioning import PROVISIONING, Decision, ProvisioningTrigger, decide
from ..domain.retry import RetryPolicy
from .panel_work import ServerOutcome, ensure_server
from .retrying import with_retries
from .unit_of_work import ProvisionerUnitOfWork

log = get_logger(__name__)
PRODUCER = "provisioner"
CONSUMER = "provisioner.order-paid"
"""The inbox's consumer name for recorded servers (key ``<event id>:r<replay count>``)."""

RETRY_HEADER = "x-spawnpoint-retry"
"""On a delayed retry's copy: which broker retry it is (1, 2, ...)."""
RETRY_TOKEN_HEADER = "x-spawnpoint-retry-token"
"""On a delayed retry's copy: the token the row waits for; any other copy of the message is stale."""
ATTEMPTS_HEADER = "x-spawnpoint-attempts"
REPLAYABLE_HEADER = "x-spawnpoint-replayable"

ATTEMPTS = Counter(
    "provisioner_attempts_total",
    "Deliveries of OrderPaid worked on or skipped, by outcome (created, adopted, retry_scheduled, failed, "
    "skipped) and reason (the failure reason, the skip reason, or 'ok')",
    ["outcome", "reason"],
)
BROKER_RETRIES = Counter(
    "provisioner_broker_retries_total", "Delayed redeliveries scheduled through the broker", ["reason"]
)
REPLAYS = Counter("provisioner_replays_total", "Operator replays picked up")


def retry_token_of(delivery: Delivery) -> uuid.UUID | None:
    value = delivery.headers.get(RETRY_TOKEN_HEADER)
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None


def clean_headers(headers: dict[str, Any]) -> dict[str, Any]:
    """The message's own headers, without the broker's dead-letter annotations and our retry marks."""
    return {
        k: v
        for k, v in headers.items()
        if not k.startswith(BROKER_ANNOTATIONS) and k not in (RETRY_HEADER, RETRY_TOKEN_HEADER)
    }


@dataclass(frozen=True)
class ProvisionOrderPaid:
    """The OrderPaid handler: ``await handler(event, uow)`` runs the three phases (module docstring)."""

    panel: Panel
    eggs: Eggs
    retry: RetryPolicy
    topology: Topology
    queue: QueueSpec
    """The work queue OrderPaid arrives on; its delay queues are ``<queue>.retry.<n>s``."""
    install_deadline: timedelta
    first_install_check: timedelta

    async def __call__(self, event: OrderPaid, uow: ProvisionerUnitOfWork) -> None:
        async with uow:
            attempt = await begin(event, uow)
            await uow.commit()
        if not attempt:
            return
        tries = 0

        async def try_once() -> ServerOutcome:
            nonlocal tries
            tries += 1
            # Attempt 1, try 1: no try of this order reached the panel before, so there is nothing to look up.
            known_absent = attempt == 1 and tries == 1
            return await ensure_server(self.panel, self.eggs, event.payload.order, known_absent=known_absent)

        try:
            outcome = await with_retries(self.retry, try_once)
        except Exception as exc:
            failure = classify(exc)
            async with uow:
                if failure.transient:
                    await retry_later(event, uow, failure, exc, policy=self.retry, delay_queue=self.delay_queue)
                else:
                    await fail(event, uow, failure, exc)
                await uow.commit()
            return
        async with uow:
            await record_created(
                event,
                uow,
                outcome,
                install_deadline=self.install_deadline,
                first_install_check=self.first_install_check,
            )
            await uow.commit()

    def delay_queue(self, delay: int) -> str:
        """The delay queue that hands a message back to the work queue after ``delay`` seconds."""
        return self.topology.retry_queue_name(self.queue, delay)


# phase 1 -------------------------------------------------------------------------------------------


async def begin(event: OrderPaid, uow: ProvisionerUnitOfWork) -> int:
    """Lock the order's row and decide: the number of the attempt this delivery makes on the panel (1 for
    the order's first), or 0 when it should not work on the panel."""
    delivery = _delivery_of(uow)
    row = await uow.provisionings.lock_or_create(event)
    decision = decide(
        row.status,
        seen_replays=row.replay_count,
        expected_retry_token=row.retry_token,
        delivery_replays=delivery.replay_count,
        delivery_retry_token=retry_token_of(delivery),
        refunded=row.refunded_at is not None,
    )
    if decision == Decision.REFUSE_REFUNDED_REPLAY:
        log.warning("operator replay of a refunded order refused", refunded_at=str(row.refunded_at))
        row.replay_count = delivery.replay_count
        uow.dead_letter(
            "order_refunded",
            f"the order was refunded at {row.refunded_at.isoformat() if row.refunded_at else '?'}; a replay would "
            "provision a server nobody pays for. Purge this message (spawnctl dlq purge --event-id ...).",
            delivery=dataclasses.replace(delivery, headers=clean_headers(delivery.headers)),
        )
    if decision in (Decision.REPLAY, Decision.NOTE_REPLAY):
        count_after_commit(uow, REPLAYS.inc)
        log.info("operator replay picked up", replay_count=delivery.replay_count, status=row.status.value)
        row.replay_count = delivery.replay_count
        uow.publish(
            ProvisioningReplayed.caused_by(
                event,
                producer=PRODUCER,
                payload=ProvisioningReplayedPayload(replay_count=delivery.replay_count, source_queue=delivery.queue),
            )
        )
    work = decision in (Decision.REPLAY, Decision.PROCEED)
    if work:
        if decision == Decision.REPLAY:
            row.broker_retries = 0
            PROVISIONING.transition(row, ProvisioningTrigger.OPERATOR_REPLAY)
        else:
            PROVISIONING.transition(row, ProvisioningTrigger.ATTEMPT)
        row.retry_token = None
        row.attempts += 1
    else:
        count_after_commit(uow, ATTEMPTS.labels("skipped", decision.value).inc)
        log.info("nothing to do for this delivery", decision=decision.value, status=row.status.value)
    row.updated_at = datetime.now(UTC)
    return row.attempts if work else 0


# phase 3 -------------------------------------------------------------------------------------------


async def record_created(
    event: OrderPaid,
    uow: ProvisionerUnitOfWork,
    outcome: ServerOutcome,
    *,
    install_deadline: timedelta,
    first_install_check: timedelta,
) -> None:
    """Record the server, the inbox entry and ServerCreated, unless another instance recorded it first."""
    delivery = _delivery_of(uow)
    row = await _locked(event, uow)
    if not PROVISIONING.allows(row.status, ProvisioningTrigger.SERVER_RECORDED):
        count_after_commit(uow, ATTEMPTS.labels("skipped", "recorded_elsewhere").inc)
        return
    await uow.claim(
        CONSUMER, f"{event.event_id}:r{delivery.replay_count}", event_type=event.event_type, order_id=event.order_id
    )
    now = datetime.now(UTC)
    server = outcome.server
    PROVISIONING.transition(row, ProvisioningTrigger.SERVER_RECORDED, at=now)
    row.server_id, row.server_uuid, row.identifier = server.id, server.uuid, server.identifier
    row.panel_user_id = outcome.panel_user_id
    row.failure_reason = row.last_error = None
    row.retry_token = None
    row.install_started_at = now
    row.install_deadline = now + install_deadline
    row.next_check_at = now + first_install_check
    row.install_checks = 0
    uow.publish(
        ServerCreated.caused_by(
            event,
            producer=PRODUCER,
            payload=ServerCreatedPayload(
                server_id=server.id,
                server_uuid=server.uuid,
                identifier=server.identifier,
                external_id=str(event.order_id),
                panel_user_id=outcome.panel_user_id,
                node_id=server.node,
                adopted=outcome.adopted,
            ),
        )
    )
    count_after_commit(uow, ATTEMPTS.labels("adopted" if outcome.adopted else "created", "ok").inc)


async def retry_later(
    event: OrderPaid,
    uow: ProvisionerUnitOfWork,
    failure: Classified,
    exc: Exception,
    *,
    policy: RetryPolicy,
    delay_queue: Callable[[int], str],
) -> None:
    """Park the message in a delay queue for the next broker retry, or fail when none is left."""
    delivery = _delivery_of(uow)
    row = await _locked(event, uow)
    if not PROVISIONING.allows(row.status, ProvisioningTrigger.SCHEDULE_RETRY):
        return  # another instance finished or scheduled it
    delay = policy.broker_delay(row.broker_retries)
    if delay is None:
        exhausted = dataclasses.replace(
            failure, message=f"{failure.message} (still failing after {row.broker_retries} delayed retries)"
        )
        _stage_failure(event, uow, row, delivery, exhausted, exc)
        return
    PROVISIONING.transition(row, ProvisioningTrigger.SCHEDULE_RETRY)
    row.broker_retries += 1
    row.retry_token = token = uuid.uuid4()
    row.failure_reason = failure.reason.value
    row.last_error = str(exc)[:2000]
    uow.send(
        QueueMessage(
            queue=delay_queue(delay),
            body=delivery.body,
            message_id=event.event_id,
            message_type=event.event_type,
            headers={
                # Anyone may have published the original: only headers that can go on the wire again travel.
                **publishable_headers(clean_headers(delivery.headers))[0],
                RETRY_HEADER: row.broker_retries,
                RETRY_TOKEN_HEADER: str(token),
            },
            correlation_id=event.correlation_id,
            order_id=event.order_id,
        )
    )
    uow.publish(
        ProvisioningRetryScheduled.caused_by(
            event,
            producer=PRODUCER,
            payload=ProvisioningRetryScheduledPayload(
                attempt=row.broker_retries, delay_seconds=float(delay), reason=failure.reason, message=failure.message
            ),
        )
    )
    count_after_commit(uow, BROKER_RETRIES.labels(failure.reason.value).inc)
    count_after_commit(uow, ATTEMPTS.labels("retry_scheduled", failure.reason.value).inc)
    log.warning(
        "panel still failing; retry scheduled through the broker",
        delay_seconds=delay,
        retry=row.broker_retries,
        reason=failure.reason.value,
    )


async def fail(event: OrderPaid, uow: ProvisionerUnitOfWork, failure: Classified, exc: Exception) -> None:
    """Fail the order now (a permanent failure), unless another instance already did or recorded it."""
    delivery = _delivery_of(uow)
    row = await _locked(event, uow)
    if not PROVISIONING.allows(row.status, ProvisioningTrigger.PANEL_FAILED):
        return  # already recorded by another instance: once per attempt
    _stage_failure(event, uow, row, delivery, failure, exc)


async def _locked(event: OrderPaid, uow: ProvisionerUnitOfWork) -> ProvisioningRow:
    """The order's row, locked: phase 1 stored it, so one statement finds it (created again only if gone)."""
    return await uow.provisionings.lock(event.order_id) or await uow.provisionings.lock_or_create(event)


def _stage_failure(
    event: OrderPaid,
    uow: ProvisionerUnitOfWork,
    row: ProvisioningRow,
    delivery: Delivery,
    failure: Classified,
    exc: Exception,
) -> None:
    """Row failed + ProvisionFailed + the message's copy in the dead-letter queue, in the open transaction."""
    log.warning("provisioning failed", reason=failure.reason.value, kind=failure.kind.value, error=str(exc)[:500])
    PROVISIONING.transition(row, ProvisioningTrigger.PANEL_FAILED)
    row.failure_reason = failure.reason.value
    row.last_error = str(exc)[:2000]
    row.retry_token = None
    uow.publish(
        ProvisionFailed.caused_by(
            event,
            producer=PRODUCER,
            payload=ProvisionFailedPayload(
                reason=failure.reason,
                message=failure.message,
                attempts=row.attempts,
                replayable=failure.replayable,
                detail=field_details(exc),
            ),
        )
    )
    uow.dead_letter(
        failure.reason.value,
        failure.message,
        extra_headers={ATTEMPTS_HEADER: row.attempts, REPLAYABLE_HEADER: failure.replayable},
        delivery=dataclasses.replace(delivery, headers=clean_headers(delivery.headers)),
    )
    count_after_commit(uow, ATTEMPTS.labels("failed", failure.reason.value).inc)


# helpers -------------------------------------------------------------------------------------------


def _delivery_of(uow: ProvisionerUnitOfWork) -> Delivery:
    """The delivery being handled: its headers carry the replay count and the retry token."""
    if uow.delivery is None:
        raise RuntimeError("OrderPaid is handled with its delivery (the subscription sets uow.delivery)")
    return uow.delivery
