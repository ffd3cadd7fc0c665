"""The provisioner's repository: the only code that reads and writes the ``provisionings`` table.

It is bound to the open unit of work's session (``service_layer/unit_of_work.py``); the handlers and the
install watcher see these methods, never SQL. Its in-memory twin is in ``provisioner.testing``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from spawnpoint_contracts import OrderPaid
from spawnpoint_kit.db import execute_sql

from ..domain.provisioning import ProvisioningStatus
from .tables import ProvisioningRow, ServerStateRow

_LEASE = sa.text(
    """
    UPDATE provisionings SET next_check_at = now() + make_interval(secs => :lease)
    WHERE order_id IN (
        SELECT order_id FROM provisionings
        WHERE status = 'installing' AND next_check_at <= now()
        ORDER BY next_check_at
        LIMIT :limit
        FOR UPDATE SKIP LOCKED
    )
    RETURNING order_id
    """
)
_INSTALLING = sa.text("SELECT count(*) FROM provisionings WHERE status = 'installing'")
_LEASE_TO_SUSPEND = sa.text(
    """
    UPDATE provisionings SET next_check_at = now() + make_interval(secs => :lease)
    WHERE order_id IN (
        SELECT order_id FROM provisionings
        WHERE refunded_at IS NOT NULL AND server_id IS NOT NULL AND suspended_at IS NULL
          AND (next_check_at IS NULL OR next_check_at <= now())
        ORDER BY next_check_at NULLS FIRST
        LIMIT :limit
        FOR UPDATE SKIP LOCKED
    )
    RETURNING order_id
    """
)


def new_provisioning(event: OrderPaid) -> ProvisioningRow:
    """The row an order's first OrderPaid creates: requested, nothing tried yet."""
    now = datetime.now(UTC)
    return ProvisioningRow(
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


class ProvisioningRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def lock_or_create(self, event: OrderPaid) -> ProvisioningRow:
        """The order's row, inserted if this is its first OrderPaid, locked until the transaction ends
        (every delivery of the order, on every instance, waits here for the one before it)."""
        row = new_provisioning(event)
        await self._session.exec(
            insert(ProvisioningRow)
            .values(
                order_id=row.order_id,
                status=row.status,
                correlation_id=row.correlation_id,
                paid_event_id=row.paid_event_id,
                order_snapshot=row.order_snapshot,
                attempts=row.attempts,
                replay_count=row.replay_count,
                broker_retries=row.broker_retries,
                install_checks=row.install_checks,
                created_at=row.created_at,
                updated_at=row.updated_at,
            )
            .on_conflict_do_nothing(index_elements=["order_id"])
        )
        return (
            await self._session.exec(
                select(ProvisioningRow).where(ProvisioningRow.order_id == event.order_id).with_for_update()
            )
        ).one()

    async def get(self, order_id: uuid.UUID) -> ProvisioningRow | None:
        return await self._session.get(ProvisioningRow, order_id)

    async def lock(self, order_id: uuid.UUID) -> ProvisioningRow | None:
        """The order's row, locked until the transaction ends; None if the order was never paid here."""
        return await self._session.get(ProvisioningRow, order_id, with_for_update=True)

    async def lease_due(self, *, limit: int, lease_seconds: float) -> list[uuid.UUID]:
        """The installs whose check is due, each leased for ``lease_seconds`` (its ``next_check_at`` pushed
        forward). ``SKIP LOCKED``: two instances never lease the same row; a crashed one's lease expires."""
        rows = (await execute_sql(self._session, _LEASE, {"limit": limit, "lease": lease_seconds})).all()
        return [r[0] for r in rows]

    async def count_installing(self) -> int:
        return int((await execute_sql(self._session, _INSTALLING)).scalar_one())

    async def lease_to_suspend(self, *, limit: int, lease_seconds: float) -> list[uuid.UUID]:
        """Refunded orders whose server is not confirmed suspended yet, each leased like an install check."""
        rows = (await execute_sql(self._session, _LEASE_TO_SUSPEND, {"limit": limit, "lease": lease_seconds})).all()
        return [r[0] for r in rows]


class ServerStateRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def lock_or_create(self, row: ServerStateRow) -> ServerStateRow:
        """The order's server state (``row`` inserted if it has none yet), locked until the transaction ends:
        every desired-state delivery of the order, on every instance, waits here for the one before it."""
        await self._session.exec(
            insert(ServerStateRow).values(**row.model_dump()).on_conflict_do_nothing(index_elements=["order_id"])
        )
        locked = await self._session.get(ServerStateRow, row.order_id, with_for_update=True, populate_existing=True)
        if locked is None:  # just inserted or already there; rows are never deleted
            raise RuntimeError(f"the server state of order {row.order_id} was not stored")
        return locked

    async def lock(self, order_id: uuid.UUID) -> ServerStateRow | None:
        return await self._session.get(ServerStateRow, order_id, with_for_update=True, populate_existing=True)

    async def get(self, order_id: uuid.UUID) -> ServerStateRow | None:
        return await self._session.get(ServerStateRow, order_id)
