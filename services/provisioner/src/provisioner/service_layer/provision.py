"""OrderPaid -> a server on the panel, exactly once per order.

1. Lock (or create) the order's provisioning row and ``decide`` what this delivery means: first
   delivery or redelivery after a crash (work), the delayed retry the row waits for (work), a stale
   duplicate (ack, nothing), an order already installing or ready (ack, nothing), an operator's replay
   (record ProvisioningReplayed in the order's history, then work). Commit.
2. Talk to the panel outside any database transaction: look the server up by ``external_id`` (the order
   id) and adopt it if it exists; otherwise ensure the customer's panel user, fetch the egg (cached),
   create the server. After a timeout, connection error or 5xx, and after a 422 ``unique`` on
   ``external_id``, look it up again and adopt what exists. A crash after the panel created the server
   and before step 3 committed is therefore harmless: the redelivered message adopts it, and so does a
   second provisioner instance handling a duplicate at the same time.
3. Lock the row again and, unless another instance got there first, record the server, the inbox entry
   and ServerCreated in one transaction. The install watcher takes it from there.

Failures (see ``domain/failures.py`` and ``domain/retry.py``): transient ones are retried in-process
(tenacity), then parked in a delay queue of the broker (``ProvisioningRetryScheduled``, growing delays),
then failed. Permanent ones fail at once, without a retry loop. Failing means, in one transaction: the row
becomes ``failed``, ``ProvisionFailed`` (reason code, message, attempt count, replayable) is staged, and a
copy of the message goes to the dead-letter queue with the reason in its headers. The row guards make
that happen once per attempt, even with two instances.
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import Counter
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from spawnpoint_contracts import (
    OrderPaid,
    OrderSnapshot,
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
from spawnpoint_kit.messaging import inbox
from spawnpoint_kit.messaging.consumer import BROKER_ANNOTATIONS, Delivery, stage_dead_letter
from spawnpoint_kit.messaging.outbox import stage_event, stage_message
from spawnpoint_kit.messaging.topology import QueueSpec, Topology

from ..adapters.eggs import EggCache
from ..adapters.panel import PanelClient
from ..adapters.tables import ProvisioningRow
from ..domain.failures import Classified, classify, field_details
from ..domain.panel import PanelError, PanelServer, PanelUnreachable
from ..domain.provisioning import DONE_OR_IN_PROGRESS, Decision, ProvisioningStatus, decide
from ..domain.retry import RetryPolicy
from ..domain.server_request import create_body
from .retrying import with_retries

log = get_logger(__name__)
PRODUCER = "provisioner"
CONSUMER = "provisioner.order-paid"

RETRY_HEADER = "x-spawnpoint-retry"
RETRY_TOKEN_HEADER = "x-spawnpoint-retry-token"

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


@dataclass(frozen=True)
class ServerOutcome:
    server: PanelServer
    panel_user_id: int
    adopted: bool


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


class Provisioner:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        topology: Topology,
        panel: PanelClient,
        eggs: EggCache,
        *,
        queue: QueueSpec,
        install_deadline: timedelta,
        first_install_check: timedelta,
        retry: RetryPolicy,
    ) -> None:
        self._sessions = sessions
        self._topology = topology
        self._panel = panel
        self._eggs = eggs
        self._queue = queue
        self._install_deadline = install_deadline
        self._first_install_check = first_install_check
        self._retry = retry

    # entry point ----------------------------------------------------------------------------------

    async def handle_order_paid(self, event: OrderPaid, delivery: Delivery) -> None:
        if not await self._begin(event, delivery):
            return
        try:
            outcome = await with_retries(self._retry, lambda: self._ensure_server(event.payload.order))
        except Exception as exc:
            failure = classify(exc)
            if failure.transient:
                await self._retry_later(event, delivery, failure, exc)
            else:
                await self._fail(event, delivery, failure, exc)
            return
        await self._record_created(event, delivery, outcome)

    async def _begin(self, event: OrderPaid, delivery: Delivery) -> bool:
        """Lock the order's row and decide; True when this delivery should work on the panel."""
        async with self._sessions() as session:
            row = await self._lock(session, event)
            decision = decide(
                row.status,
                seen_replays=row.replay_count,
                expected_retry_token=row.retry_token,
                delivery_replays=delivery.replay_count,
                delivery_retry_token=retry_token_of(delivery),
            )
            now = datetime.now(UTC)
            if decision in (Decision.REPLAY, Decision.NOTE_REPLAY):
                REPLAYS.inc()
                log.info("operator replay picked up", replay_count=delivery.replay_count, status=row.status.value)
                row.replay_count = delivery.replay_count
                await stage_event(
                    session,
                    ProvisioningReplayed.caused_by(
                        event,
                        producer=PRODUCER,
                        payload=ProvisioningReplayedPayload(
                            replay_count=delivery.replay_count, source_queue=delivery.queue
                        ),
                    ),
                    self._topology,
                )
            if decision in (Decision.REPLAY, Decision.PROCEED):
                if decision == Decision.REPLAY:
                    row.broker_retries = 0
                row.status = ProvisioningStatus.REQUESTED
                row.retry_token = None
                row.attempts += 1
            else:
                ATTEMPTS.labels("skipped", decision.value).inc()
                log.info("nothing to do for this delivery", decision=decision.value, status=row.status.value)
            row.updated_at = now
            session.add(row)
            await session.commit()
            return decision in (Decision.REPLAY, Decision.PROCEED)

    async def _lock(self, session: AsyncSession, event: OrderPaid) -> ProvisioningRow:
        now = datetime.now(UTC)
        await session.exec(
            insert(ProvisioningRow)
            .values(
                order_id=event.order_id,
                status=ProvisioningStatus.REQUESTED,
                correlation_id=event.correlation_id,
                paid_event_id=event.event_id,
                order_snapshot=event.payload.order.model_dump(mode="json"),
                attempts=0,
                replay_count=0,
                broker_retries=0,
                install_checks=0,
                created_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing(index_elements=["order_id"])
        )
        return (
            await session.exec(
                select(ProvisioningRow).where(ProvisioningRow.order_id == event.order_id).with_for_update()
            )
        ).one()

    # panel work -------------------------------------------------------------------------------------

    async def _ensure_server(self, order: OrderSnapshot) -> ServerOutcome:
        external_id = str(order.order_id)
        existing = await self._panel.server_by_external_id(external_id)
        if existing is not None:
            log.info("server already exists on the panel; adopting it", server_id=existing.id)
            return ServerOutcome(existing, existing.user, adopted=True)
        user_id = await self._panel.ensure_user(user_id=order.user_id, email=order.email)
        egg = await self._eggs.get(nest_id=order.server_spec.nest_id, egg_id=order.server_spec.egg_id)
        body = create_body(order, user_id=user_id, egg=egg, flavor=self._panel.flavor)
        try:
            created = await self._panel.create_server(body)
        except PanelError as exc:
            if (exc.status == 422 and exc.has("external_id", "unique")) or exc.status >= 500:
                return await self._adopt_or_raise(external_id, exc, "create raced or failed after commit")
            raise
        except PanelUnreachable as exc:
            return await self._adopt_or_raise(external_id, exc, "create timed out but the server may exist")
        log.info("server created on the panel", server_id=created.id, identifier=created.identifier)
        return ServerOutcome(created, user_id, adopted=False)

    async def _adopt_or_raise(self, external_id: str, exc: Exception, why: str) -> ServerOutcome:
        """The outcome of the create is unknown: look again, adopt what exists, else fail this try."""
        adopted = await self._panel.server_by_external_id(external_id)
        if adopted is None:
            raise exc
        log.info(f"{why}; adopting", server_id=adopted.id)
        return ServerOutcome(adopted, adopted.user, adopted=True)

    # recording -----------------------------------------------------------------------------------

    async def _record_created(self, event: OrderPaid, delivery: Delivery, outcome: ServerOutcome) -> None:
        now = datetime.now(UTC)
        async with self._sessions() as session:
            row = await self._lock(session, event)
            if row.status in DONE_OR_IN_PROGRESS:
                await session.commit()  # another instance recorded it first
                ATTEMPTS.labels("skipped", "recorded_elsewhere").inc()
                return
            await inbox.claim(
                session,
                CONSUMER,
                f"{event.event_id}:r{delivery.replay_count}",
                event_type=event.event_type,
                order_id=event.order_id,
            )
            server = outcome.server
            row.status = ProvisioningStatus.INSTALLING
            row.server_id, row.server_uuid, row.identifier = server.id, server.uuid, server.identifier
            row.panel_user_id = outcome.panel_user_id
            row.failure_reason = row.last_error = None
            row.retry_token = None
            row.install_started_at = now
            row.install_deadline = now + self._install_deadline
            row.next_check_at = now + self._first_install_check
            row.install_checks = 0
            row.updated_at = now
            session.add(row)
            await stage_event(
                session,
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
                ),
                self._topology,
            )
            await session.commit()
        ATTEMPTS.labels("adopted" if outcome.adopted else "created", "ok").inc()

    async def _retry_later(self, event: OrderPaid, delivery: Delivery, failure: Classified, exc: Exception) -> None:
        """Park the message in a delay queue for the next broker retry, or fail when none is left."""
        async with self._sessions() as session:
            row = await self._lock(session, event)
            if row.status != ProvisioningStatus.REQUESTED:
                await session.commit()  # another instance finished or scheduled it
                return
            delay = self._retry.broker_delay(row.broker_retries)
            if delay is None:
                exhausted = dataclasses.replace(
                    failure,
                    message=f"{failure.message} (still failing after {row.broker_retries} delayed retries)",
                )
                await self._stage_failure(session, row, event, delivery, exhausted, exc)
                await session.commit()
                return
            token = uuid.uuid4()
            row.status = ProvisioningStatus.RETRY_SCHEDULED
            row.broker_retries += 1
            row.retry_token = token
            row.failure_reason = failure.reason.value
            row.last_error = str(exc)[:2000]
            row.updated_at = datetime.now(UTC)
            session.add(row)
            await stage_message(
                session,
                queue=self._topology.retry_queue_name(self._queue, delay),
                body=delivery.body,
                message_id=event.event_id,
                message_type=event.event_type,
                headers={
                    **clean_headers(delivery.headers),
                    RETRY_HEADER: row.broker_retries,
                    RETRY_TOKEN_HEADER: str(token),
                },
                correlation_id=event.correlation_id,
                order_id=event.order_id,
            )
            await stage_event(
                session,
                ProvisioningRetryScheduled.caused_by(
                    event,
                    producer=PRODUCER,
                    payload=ProvisioningRetryScheduledPayload(
                        attempt=row.broker_retries,
                        delay_seconds=float(delay),
                        reason=failure.reason,
                        message=failure.message,
                    ),
                ),
                self._topology,
            )
            await session.commit()
        BROKER_RETRIES.labels(failure.reason.value).inc()
        ATTEMPTS.labels("retry_scheduled", failure.reason.value).inc()
        log.warning(
            "panel still failing; retry scheduled through the broker",
            delay_seconds=delay,
            retry=row.broker_retries,
            reason=failure.reason.value,
        )

    async def _fail(self, event: OrderPaid, delivery: Delivery, failure: Classified, exc: Exception) -> None:
        async with self._sessions() as session:
            row = await self._lock(session, event)
            if row.status in DONE_OR_IN_PROGRESS or row.status == ProvisioningStatus.FAILED:
                await session.commit()  # already recorded by another instance: once per attempt
                return
            await self._stage_failure(session, row, event, delivery, failure, exc)
            await session.commit()

    async def _stage_failure(
        self,
        session: AsyncSession,
        row: ProvisioningRow,
        event: OrderPaid,
        delivery: Delivery,
        failure: Classified,
        exc: Exception,
    ) -> None:
        """Row failed + ProvisionFailed + the message's copy in the dead-letter queue, in the caller's
        transaction."""
        log.warning("provisioning failed", reason=failure.reason.value, kind=failure.kind.value, error=str(exc)[:500])
        row.status = ProvisioningStatus.FAILED
        row.failure_reason = failure.reason.value
        row.last_error = str(exc)[:2000]
        row.retry_token = None
        row.updated_at = datetime.now(UTC)
        session.add(row)
        await stage_event(
            session,
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
            ),
            self._topology,
        )
        await stage_dead_letter(
            session,
            dataclasses.replace(delivery, headers=clean_headers(delivery.headers)),
            reason=failure.reason.value,
            detail=failure.message,
            extra_headers={"x-spawnpoint-attempts": row.attempts, "x-spawnpoint-replayable": failure.replayable},
        )
        ATTEMPTS.labels("failed", failure.reason.value).inc()
