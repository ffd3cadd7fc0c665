"""Following installations until the panel says they finished (or failed, or took too long).

Rows in ``installing`` are the watch list, so a restart resumes every watch where it was. Each round
leases the due rows (by pushing ``next_check_at`` forward under ``FOR UPDATE SKIP LOCKED``, so two
provisioner instances never check the same server at once, and a crashed instance's lease simply
expires), reads the server's ``status`` from the panel and then:

- ``null`` (installed): ready, ServerInstalled;
- ``install_failed`` / ``reinstall_failed``: failed, ProvisionFailed(install_failed);
- gone from the panel (404): failed, ProvisionFailed(install_failed);
- still installing (or any other status) past the deadline: failed, ProvisionFailed(install_timeout);
- otherwise: check again later. The interval grows by half each check (from ``poll_seconds`` up to
  ``max_interval_seconds``, with a little jitter), so a slow install costs few panel calls.

The first check happens ``poll_seconds`` after the server was created (an install is never done at
once). A panel that cannot be reached is asked again later; the deadline is applied only to an answer.
Every call goes through the panel client's rate gate. Polling customers never cause panel calls: only
this loop asks the panel about installations.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from prometheus_client import Counter, Gauge
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

INSTALLS_IN_PROGRESS = Gauge("provisioner_installs_in_progress", "Servers created and still installing")
INSTALL_CHECKS = Counter("provisioner_install_checks_total", "Install status checks by result", ["result"])
INSTALL_OUTCOMES = Counter("provisioner_install_outcomes_total", "Finished install watches", ["outcome"])

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
_IN_PROGRESS = sa.text("SELECT count(*) FROM provisionings WHERE status = 'installing'")


def next_interval(poll_seconds: float, max_interval_seconds: float, checks: int) -> float:
    """Seconds until the next check after ``checks`` checks: growing by half each time, capped."""
    return min(max_interval_seconds, poll_seconds * (1.5 ** min(checks, 30)))


class InstallWatcher:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        topology: Topology,
        panel: PanelClient,
        *,
        poll_seconds: float,
        max_interval_seconds: float = 30.0,
        lease_seconds: float = 60.0,
    ) -> None:
        self._sessions = sessions
        self._topology = topology
        self._panel = panel
        self._poll = poll_seconds
        self._max_interval = max_interval_seconds
        self._lease = lease_seconds

    async def due(self, limit: int = 50) -> list[uuid.UUID]:
        async with self._sessions() as session:
            rows = (await execute_sql(session, _LEASE, {"limit": limit, "lease": self._lease})).all()
            in_progress = (await execute_sql(session, _IN_PROGRESS)).scalar_one()
            await session.commit()
        INSTALLS_IN_PROGRESS.set(int(in_progress))
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
                INSTALL_CHECKS.labels("error").inc()
                log.warning("install check failed; will retry", error=str(exc))
                await self._reschedule(order_id)
                return
            now = datetime.now(UTC)
            if server is None:
                INSTALL_CHECKS.labels("gone").inc()
                await self._finish(
                    order_id, failed=FailureReason.INSTALL_FAILED, message="the server vanished from the panel"
                )
            elif server.status is None:
                INSTALL_CHECKS.labels("installed").inc()
                await self._finish(order_id)
            elif server.status in ("install_failed", "reinstall_failed"):
                INSTALL_CHECKS.labels("failed").inc()
                await self._finish(
                    order_id,
                    failed=FailureReason.INSTALL_FAILED,
                    message=f"the panel reports the installation failed ({server.status})",
                )
            elif row.install_deadline is not None and now >= row.install_deadline:
                INSTALL_CHECKS.labels("timeout").inc()
                started = row.install_started_at or now
                await self._finish(
                    order_id,
                    failed=FailureReason.INSTALL_TIMEOUT,
                    message=f"the installation did not finish within {int((now - started).total_seconds())} s "
                    f"(panel status {server.status!r})",
                )
            else:
                INSTALL_CHECKS.labels("installing").inc()
                await self._reschedule(order_id)

    async def _reschedule(self, order_id: uuid.UUID) -> None:
        async with self._sessions() as session:
            row = await session.get(ProvisioningRow, order_id, with_for_update=True)
            if row is None or row.status != ProvisioningStatus.INSTALLING:
                await session.commit()
                return
            row.install_checks += 1
            interval = next_interval(self._poll, self._max_interval, row.install_checks)
            interval *= random.uniform(0.9, 1.1)
            next_check = datetime.now(UTC) + timedelta(seconds=interval)
            if row.install_deadline is not None:
                # Never sleep past the deadline: the timeout is reported on time.
                next_check = min(next_check, max(row.install_deadline, datetime.now(UTC)))
            row.next_check_at = next_check
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
                log.info("server installed", server_id=row.server_id, checks=row.install_checks)
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
                log.warning("installation failed", reason=failed.value, checks=row.install_checks)
            session.add(row)
            await stage_event(session, event, self._topology)
            await session.commit()
        INSTALL_OUTCOMES.labels(failed.value if failed else "installed").inc()
