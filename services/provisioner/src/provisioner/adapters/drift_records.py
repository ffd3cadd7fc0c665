"""What the drift reconciler reads of the provisioner's tables: every order's provisioning and server state,
side by side (a full outer join: a desired state can arrive before the order's OrderPaid, and orders from
before rentals have no server state). Read-only, in short transactions of their own, never locking."""

from __future__ import annotations

import json
import uuid
from collections.abc import Collection
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from spawnpoint_kit.db import execute_sql

from ..domain.drift import OrderRecord
from ..service_layer.drift import build_record

_COLUMNS = """
    SELECT coalesce(p.order_id, s.order_id) AS order_id,
           p.status, p.server_id, p.refunded_at, p.suspended_at, p.updated_at AS provisioning_updated_at,
           s.order_id AS state_order_id, s.desired_state, s.desired_version, s.desired_limits,
           s.applied_state, s.applied_version, s.failed_version, s.waiting, s.updated_at AS state_updated_at
    FROM provisionings p FULL OUTER JOIN server_states s ON s.order_id = p.order_id
"""
_ALL = sa.text(_COLUMNS + " ORDER BY 1")
_SOME = sa.text(_COLUMNS + " WHERE coalesce(p.order_id, s.order_id) IN :ids").bindparams(
    sa.bindparam("ids", expanding=True)
)


class SqlDriftRecords:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def all(self) -> list[OrderRecord]:
        async with self._sessions() as session:
            rows = (await execute_sql(session, _ALL)).mappings().all()
        return [_record(row) for row in rows]

    async def of(self, order_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, OrderRecord]:
        if not order_ids:
            return {}
        async with self._sessions() as session:
            rows = (await execute_sql(session, _SOME, {"ids": list(order_ids)})).mappings().all()
        return {record.order_id: record for record in map(_record, rows)}


def _record(row: RowMapping) -> OrderRecord:
    return build_record(
        row["order_id"],
        status=row["status"],
        server_id=row["server_id"],
        refunded_at=row["refunded_at"],
        suspended_at=row["suspended_at"],
        provisioning_updated_at=row["provisioning_updated_at"],
        state=None
        if row["state_order_id"] is None
        else {
            "desired_state": row["desired_state"],
            "desired_version": row["desired_version"],
            "desired_limits": _json(row["desired_limits"]),
            "applied_state": row["applied_state"],
            "applied_version": row["applied_version"],
            "failed_version": row["failed_version"],
            "waiting": row["waiting"],
            "updated_at": row["state_updated_at"],
        },
    )


def _json(value: Any) -> Any:
    """A JSONB column of a raw query: decoded by the driver's codec, or text when none is set."""
    return json.loads(value) if isinstance(value, str | bytes) else value
