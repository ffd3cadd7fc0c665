"""OrderPaid -> a server on the panel, exactly once per order.

1. Lock (or create) the order's provisioning row. An order already ``installing`` or ``ready`` is done:
   a redelivered or duplicated OrderPaid changes nothing.
2. Talk to the panel outside any database transaction: look the server up by ``external_id`` (the order
   id) and adopt it if it exists; otherwise ensure the customer's panel user, fetch the egg (cached),
   create the server. After a timeout, connection error or 5xx, and after a 422 ``unique`` on
   ``external_id``, look it up again and adopt what exists. A crash after the panel created the server
   and before step 3 committed is therefore harmless: the redelivered message adopts it.
3. Lock the row again and, unless another instance got there first, record the server, the inbox entry
   and ServerCreated in one transaction. The install watcher takes it from there.

Transient failures are retried in-process (tenacity, exponential backoff with jitter, bounded in
attempts and in time, far below the broker's consumer timeout). Permanent ones, and transient ones that
outlast the retries, end the attempt: the row becomes ``failed`` and ProvisionFailed and a copy of the
message for the dead-letter queue are staged in the same transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential_jitter,
)

from spawnpoint_contracts import (
    OrderPaid,
    OrderSnapshot,
    ProvisionFailed,
    ProvisionFailedPayload,
    ServerCreated,
    ServerCreatedPayload,
)
from spawnpoint_kit.logs import get_logger
from spawnpoint_kit.messaging import inbox
from spawnpoint_kit.messaging.consumer import Delivery, stage_dead_letter
from spawnpoint_kit.messaging.outbox import stage_event
from spawnpoint_kit.messaging.topology import Topology

from ..adapters.eggs import EggCache
from ..adapters.panel import PanelClient, panel_username, user_external_id
from ..adapters.tables import ProvisioningRow
from ..domain.failures import Classified, Kind, classify
from ..domain.panel import PanelError, PanelServer, PanelUnreachable
from ..domain.provisioning import DONE_OR_IN_PROGRESS, ProvisioningStatus
from ..domain.server_request import create_body

log = get_logger(__name__)
PRODUCER = "provisioner"
CONSUMER = "provisioner.order-paid"


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4
    max_seconds: float = 30.0
    initial_seconds: float = 0.5
    max_wait_seconds: float = 8.0


@dataclass(frozen=True)
class ServerOutcome:
    server: PanelServer
    panel_user_id: int
    adopted: bool


class Provisioner:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        topology: Topology,
        panel: PanelClient,
        eggs: EggCache,
        *,
        install_deadline: timedelta,
        retry: RetryPolicy | None = None,
    ) -> None:
        self._sessions = sessions
        self._topology = topology
        self._panel = panel
        self._eggs = eggs
        self._install_deadline = install_deadline
        self._retry = retry or RetryPolicy()

    # entry point ----------------------------------------------------------------------------------

    async def handle_order_paid(self, event: OrderPaid, delivery: Delivery) -> None:
        order = event.payload.order
        if not await self._begin(event, delivery):
            return
        try:
            outcome = await self._with_retries(lambda: self._ensure_server(order))
        except Exception as exc:
            await self._fail(event, delivery, classify(exc), exc)
            return
        await self._record_created(event, delivery, outcome)

    async def _begin(self, event: OrderPaid, delivery: Delivery) -> bool:
        """Lock the order's row; False when there is nothing to do."""
        async with self._sessions() as session:
            row = await self._lock(session, event)
            if row.status in DONE_OR_IN_PROGRESS:
                log.info("order already provisioned; nothing to do", status=row.status.value)
                await session.commit()
                return False
            if row.status == ProvisioningStatus.FAILED and delivery.replay_count <= row.replay_count:
                log.info("order failed before; waiting for an operator replay", reason=row.failure_reason)
                await session.commit()
                return False
            row.replay_count = max(row.replay_count, delivery.replay_count)
            row.status = ProvisioningStatus.REQUESTED
            row.attempts += 1
            row.updated_at = datetime.now(UTC)
            session.add(row)
            await session.commit()
            return True

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

    async def _with_retries(self, work: Callable[[], Awaitable[ServerOutcome]]) -> ServerOutcome:
        policy = self._retry

        def transient(exc: BaseException) -> bool:
            return classify(exc).kind == Kind.TRANSIENT

        def log_retry(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            log.warning("panel call failed; retrying", attempt=state.attempt_number, error=str(exc))

        async for attempt in AsyncRetrying(
            retry=retry_if_exception(transient),
            stop=stop_after_attempt(policy.attempts) | stop_after_delay(policy.max_seconds),
            wait=wait_exponential_jitter(initial=policy.initial_seconds, max=policy.max_wait_seconds),
            before_sleep=log_retry,
            reraise=True,
        ):
            with attempt:
                return await work()
        raise AssertionError("unreachable")

    async def _ensure_server(self, order: OrderSnapshot) -> ServerOutcome:
        external_id = str(order.order_id)
        existing = await self._panel.server_by_external_id(external_id)
        if existing is not None:
            log.info("server already exists on the panel; adopting it", server_id=existing.id)
            return ServerOutcome(existing, existing.user, adopted=True)
        user_id = await self._ensure_user(order)
        egg = await self._eggs.get(nest_id=order.server_spec.nest_id, egg_id=order.server_spec.egg_id)
        body = create_body(order, user_id=user_id, egg=egg, flavor=self._panel.flavor)
        try:
            created = await self._panel.create_server(body)
        except PanelError as exc:
            if (exc.status == 422 and exc.has("external_id", "unique")) or exc.status >= 500:
                adopted = await self._panel.server_by_external_id(external_id)
                if adopted is not None:
                    log.info("create raced or failed after commit; adopting", server_id=adopted.id)
                    return ServerOutcome(adopted, adopted.user, adopted=True)
            raise
        except PanelUnreachable:
            adopted = await self._panel.server_by_external_id(external_id)
            if adopted is not None:
                log.info("create timed out but the server exists; adopting", server_id=adopted.id)
                return ServerOutcome(adopted, adopted.user, adopted=True)
            raise
        log.info("server created on the panel", server_id=created.id, identifier=created.identifier)
        return ServerOutcome(created, user_id, adopted=False)

    async def _ensure_user(self, order: OrderSnapshot) -> int:
        external_id = user_external_id(order.user_id)
        found = await self._panel.user_by_external_id(external_id)
        if found is not None:
            return found
        try:
            return await self._panel.create_user(
                external_id=external_id, email=order.email, username=panel_username(order.user_id)
            )
        except PanelError as exc:
            if exc.status == 422 and (exc.has("email", "unique") or exc.has("external_id", "unique")):
                # The account exists (made by hand, or by a concurrent order): use it.
                by_external = await self._panel.user_by_external_id(external_id)
                if by_external is not None:
                    return by_external
                by_email = await self._panel.user_by_email(order.email)
                if by_email is not None:
                    return by_email
            raise

    # recording -----------------------------------------------------------------------------------

    async def _record_created(self, event: OrderPaid, delivery: Delivery, outcome: ServerOutcome) -> None:
        now = datetime.now(UTC)
        async with self._sessions() as session:
            row = await self._lock(session, event)
            if row.status in DONE_OR_IN_PROGRESS:
                await session.commit()  # another instance recorded it first
                return
            await inbox.claim(
                session,
                CONSUMER,
                _inbox_key(delivery, event.event_id),
                event_type=event.event_type,
                order_id=event.order_id,
            )
            server = outcome.server
            row.status = ProvisioningStatus.INSTALLING
            row.server_id, row.server_uuid, row.identifier = server.id, server.uuid, server.identifier
            row.panel_user_id = outcome.panel_user_id
            row.failure_reason = row.last_error = None
            row.install_started_at = now
            row.install_deadline = now + self._install_deadline
            row.next_check_at = now
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

    async def _fail(self, event: OrderPaid, delivery: Delivery, failure: Classified, exc: BaseException) -> None:
        log.warning("provisioning failed", reason=failure.reason.value, kind=failure.kind.value, error=str(exc))
        async with self._sessions() as session:
            row = await self._lock(session, event)
            if row.status in DONE_OR_IN_PROGRESS or row.status == ProvisioningStatus.FAILED:
                await session.commit()
                return
            row.status = ProvisioningStatus.FAILED
            row.failure_reason = failure.reason.value
            row.last_error = str(exc)[:2000]
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
                    ),
                ),
                self._topology,
            )
            await stage_dead_letter(session, delivery, reason=failure.reason.value, detail=failure.message)
            await session.commit()


def _inbox_key(delivery: Delivery, event_id: uuid.UUID) -> str:
    return f"{event_id}:r{delivery.replay_count}"
