"""The provisioner's repositories: the only code that reads and writes the ``provisionings`` and
``server_states`` tables.

They are bound to the open unit of work's transaction (``service_layer/unit_of_work.py``); the handlers and
the install watcher see these methods, never SQL. Their statements go to the driver directly and the rows
they hand out are written back on commit (``spawnpoint_kit.rows``). Their in-memory twins are in
``provisioner.testing``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from spawnpoint_contracts import OrderPaid
from spawnpoint_kit.rows import Table, TransactionRows, new_row

from ..domain.provisioning import ProvisioningStatus
from .tables import ProvisioningRow, ServerStateRow

PROVISIONINGS = Table(
    ProvisioningRow, key="order_id", json_columns=("order_snapshot",), enums={"status": ProvisioningStatus}
)
SERVER_STATES = Table(
    ServerStateRow, key="order_id", json_columns=("desired_limits", "desired_event", "applied_limits")
)

_P = PROVISIONINGS.select_list
_INSERT_PROVISIONING = PROVISIONINGS.insert_sql(returning="order_id")
_GET_PROVISIONING = f"SELECT {_P} FROM provisionings WHERE order_id = $1"  # noqa: S608 - the model's columns
_LOCK_PROVISIONING = _GET_PROVISIONING + " FOR UPDATE"
_LEASE = f"""
    UPDATE provisionings SET next_check_at = now() + make_interval(secs => $2)
    WHERE order_id IN (
        SELECT order_id FROM provisionings
        WHERE status = 'installing' AND next_check_at <= now()
        ORDER BY next_check_at
        LIMIT $1
        FOR UPDATE SKIP LOCKED
    )
    RETURNING {_P}
    """  # noqa: S608 - the model's columns
_INSTALLING = "SELECT count(*) FROM provisionings WHERE status = 'installing'"
_LEASE_TO_SUSPEND = """
    UPDATE provisionings SET next_check_at = now() + make_interval(secs => $2)
    WHERE order_id IN (
        SELECT order_id FROM provisionings
        WHERE refunded_at IS NOT NULL AND server_id IS NOT NULL AND suspended_at IS NULL
          AND (next_check_at IS NULL OR next_check_at <= now())
        ORDER BY next_check_at NULLS FIRST
        LIMIT $1
        FOR UPDATE SKIP LOCKED
    )
    RETURNING order_id
    """

_INSERT_STATE = SERVER_STATES.insert_sql(returning="order_id")
_GET_STATE = f"SELECT {SERVER_STATES.select_list} FROM server_states WHERE order_id = $1"  # noqa: S608 - columns
_LOCK_STATE = _GET_STATE + " FOR UPDATE"


def new_provisioning(event: OrderPaid) -> ProvisioningRow:
    """The row an order's first OrderPaid creates: requested, nothing tried yet."""
    now = datetime.now(UTC)
    return new_row(
        ProvisioningRow,
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
    def __init__(self, rows: TransactionRows) -> None:
        self._rows = rows

    async def lock_or_create(self, event: OrderPaid) -> ProvisioningRow:
        """The order's row, inserted if this is its first OrderPaid, locked until the transaction ends
        (every delivery of the order, on every instance, waits here for the one before it; a row this
        transaction inserted is its own until the commit)."""
        row = new_provisioning(event)
        if await self._rows.insert(PROVISIONINGS, _INSERT_PROVISIONING, row):
            return row
        locked = await self.lock(event.order_id)
        if locked is None:  # inserted by another transaction, which the conflict waited for: rows stay
            raise RuntimeError(f"the provisioning of order {event.order_id} was not stored")
        return locked

    async def get(self, order_id: uuid.UUID) -> ProvisioningRow | None:
        found: ProvisioningRow | None = await self._rows.one(PROVISIONINGS, _GET_PROVISIONING, order_id)
        return found

    async def lock(self, order_id: uuid.UUID) -> ProvisioningRow | None:
        """The order's row, locked until the transaction ends; None if the order was never paid here."""
        found: ProvisioningRow | None = await self._rows.lock(PROVISIONINGS, _LOCK_PROVISIONING, order_id)
        return found

    async def lease_due(self, *, limit: int, lease_seconds: float) -> list[ProvisioningRow]:
        """The installs whose check is due, each leased for ``lease_seconds`` (its ``next_check_at`` pushed
        forward), as they are now: the watcher checks them without reading them again. ``SKIP LOCKED``: two
        instances never lease the same row; a crashed one's lease expires."""
        return await self._rows.many(PROVISIONINGS, _LEASE, limit, float(lease_seconds))

    async def count_installing(self) -> int:
        return int((await self._rows.fetchrow(_INSTALLING))[0])

    async def lease_to_suspend(self, *, limit: int, lease_seconds: float) -> list[uuid.UUID]:
        """Refunded orders whose server is not confirmed suspended yet, each leased like an install check."""
        await self._rows.before_read(PROVISIONINGS)
        return [r[0] for r in await self._rows.fetch(_LEASE_TO_SUSPEND, limit, float(lease_seconds))]


class ServerStateRepository:
    def __init__(self, rows: TransactionRows) -> None:
        self._rows = rows

    async def lock_or_create(self, row: ServerStateRow) -> ServerStateRow:
        """The order's server state (``row`` inserted if it has none yet), locked until the transaction ends:
        every desired-state delivery of the order, on every instance, waits here for the one before it."""
        if await self._rows.insert(SERVER_STATES, _INSERT_STATE, row):
            return row
        locked = await self.lock(row.order_id)
        if locked is None:  # just inserted or already there; rows are never deleted
            raise RuntimeError(f"the server state of order {row.order_id} was not stored")
        return locked

    async def lock(self, order_id: uuid.UUID) -> ServerStateRow | None:
        found: ServerStateRow | None = await self._rows.lock(SERVER_STATES, _LOCK_STATE, order_id)
        return found

    async def get(self, order_id: uuid.UUID) -> ServerStateRow | None:
        found: ServerStateRow | None = await self._rows.one(SERVER_STATES, _GET_STATE, order_id)
        return found
