"""Following installations until the panel says they finished (or failed, or took too long).

Rows in ``installing`` are the watch list, so a restart resumes every watch. Each round leases the due
rows (by pushing ``next_check_at`` forward under ``FOR UPDATE SKIP LOCKED``, so two provisioner
instances never check the same server at once), reads the server's ``status`` from the panel and then:

- ``null`` (installed): ready, ServerInstalled;
- ``install_failed`` / ``reinstall_failed``: failed, ProvisionFailed(install_failed);
- still installing past the deadline: failed, ProvisionFailed(install_timeout);
- otherwise: check again later, with a growing interval.

Polling customers never cause panel calls: only this loop asks the panel about installations.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from spawnpoint_contracts import (
    FailureReason,
    ProvisionFailed,
    ProvisionFailedPayload,
    ServerInstalled,
    ServerInstalledPayload,
)
from spawnpoint_kit.db import execute_sql
from spawnpoint_kit.logs import get_logger, log_context
from spawnpoint_kit.messaging.outbox import stage_event
from spawnpoint_kit.messaging.topology import Topology

from ..adapters.panel import PanelClient
from ..adapters.tables import ProvisioningRow
from ..domain.provisioning import ProvisioningStatus

log = get_logger(__name__)
PRODUCER = "provisioner"

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


class InstallWatcher:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        topology: Topology,
        panel: PanelClient,
        *,
        poll_seconds: float,
        max_interval_seconds: float = 30.0,
    ) -> None:
        self._sessions = sessions
        self._topology = topology
        self._panel = panel
        self._poll = poll_seconds
        self._max_interval = max_interval_seconds

    async def due(self, limit: int = 50) -> list[uuid.UUID]:
        async with self._sessions() as session:
            rows = (await execute_sql(session, _LEASE, {"limit": limit, "lease": 60})).all()
            await session.commit()
        return [r[0] for r in rows]

    async def check(self, order_id: uuid.UUID) -> None:
        async with self._sessions() as session:
            row = (await session.exec(select(ProvisioningRow).where(ProvisioningRow.order_id == order_id))).first()
        if row is None or row.status != ProvisioningStatus.INSTALLING or row.server_id is None:
            return
        with log_context(order_id=order_id, correlation_id=row.correlation_id):
            try:
                server = await self._panel.server(row.server_id)
            except Exception as exc:
                log.warning("install check failed; will retry", error=str(exc))
                await self._reschedule(order_id)
                return
            now = datetime.now(UTC)
            if server is None:
                await self._finish(
                    order_id, failed=FailureReason.INSTALL_FAILED, message="the server vanished from the panel"
                )
            elif server.status is None:
                await self._finish(order_id)
            elif server.status in ("install_failed", "reinstall_failed"):
                await self._finish(
                    order_id,
                    failed=FailureReason.INSTALL_FAILED,
                    message=f"the panel reports the installation failed ({server.status})",
                )
            elif row.install_deadline is not None and now >= row.install_deadline:
                await self._finish(
                    order_id,
                    failed=FailureReason.INSTALL_TIMEOUT,
                    message="the installation did not finish before the deadline",
                )
            else:
                await self._reschedule(order_id)

    async def _reschedule(self, order_id: uuid.UUID) -> None:
        async with self._sessions() as session:
            row = await session.get(ProvisioningRow, order_id, with_for_update=True)
            if row is None or row.status != ProvisioningStatus.INSTALLING:
                await session.commit()
                return
            row.install_checks += 1
            interval = min(self._max_interval, self._poll * (1.5 ** min(row.install_checks, 20)))
            row.next_check_at = datetime.now(UTC) + timedelta(seconds=interval)
            session.add(row)
            await session.commit()

    async def _finish(self, order_id: uuid.UUID, *, failed: FailureReason | None = None, message: str = "") -> None:
        async with self._sessions() as session:
            row = await session.get(ProvisioningRow, order_id, with_for_update=True)
            if row is None or row.status != ProvisioningStatus.INSTALLING or row.server_id is None:
                await session.commit()
                return
            row.install_checks += 1
            row.updated_at = datetime.now(UTC)
            common = {
                "order_id": order_id,
                "correlation_id": row.correlation_id,
                "causation_id": row.paid_event_id,
                "producer": PRODUCER,
            }
            if failed is None:
                row.status = ProvisioningStatus.READY
                event: ServerInstalled | ProvisionFailed = ServerInstalled(
                    **common, payload=ServerInstalledPayload(server_id=row.server_id, identifier=row.identifier or "")
                )
                log.info("server installed", server_id=row.server_id)
            else:
                row.status = ProvisioningStatus.FAILED
                row.failure_reason = failed.value
                row.last_error = message
                event = ProvisionFailed(
                    **common,
                    payload=ProvisionFailedPayload(
                        reason=failed,
                        message=message,
                        attempts=row.attempts,
                        replayable=False,
                        server_id=row.server_id,
                    ),
                )
                log.warning("installation failed", reason=failed.value)
            session.add(row)
            await stage_event(session, event, self._topology)
            await session.commit()
