"""Following installations until the panel says they finished (or failed, or took too long).

Rows in ``installing`` are the watch list, so a restart resumes every watch where it was. Each round
(``watch_round``, run by ``entrypoints/install_watcher.py``) leases the due rows through the repository
(by pushing ``next_check_at`` forward under ``FOR UPDATE SKIP LOCKED``, so two provisioner instances
never check the same server at once, and a crashed instance's lease simply expires), then checks them
concurrently, each in units of work of its own: with the row as the lease returned it (not read again),
ask the panel for the server's ``status`` outside any transaction, and then lock the row again and:

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

An install that ended hands the order's desired state (``service_layer.converge``) on in the same
transaction: when the read that found the server installed already shows that state (running, with the
plan's build), it is recorded as applied there; otherwise it goes back to the desired-state queue.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from prometheus_client import Counter, Gauge

from spawnpoint_contracts import (
    FailureReason,
    ProvisionFailed,
    ProvisionFailedPayload,
    ServerInstalled,
    ServerInstalledPayload,
)
from spawnpoint_kit.logs import get_logger, log_context

from ..adapters.tables import ProvisioningRow
from ..domain.panel import Panel, PanelServer
from ..domain.provisioning import PROVISIONING, ProvisioningStatus, ProvisioningTrigger
from .converge import converge_on_install, resend_message
from .unit_of_work import ProvisionerUnitOfWork

log = get_logger(__name__)
PRODUCER = "provisioner"

INSTALLS_IN_PROGRESS = Gauge("provisioner_installs_in_progress", "Servers created and still installing")
INSTALL_CHECKS = Counter("provisioner_install_checks_total", "Install status checks by result", ["result"])
INSTALL_OUTCOMES = Counter("provisioner_install_outcomes_total", "Finished install watches", ["outcome"])


def next_interval(poll_seconds: float, max_interval_seconds: float, checks: int) -> float:
    """Seconds until the next check after ``checks`` checks: growing by half each time, capped."""
    return min(max_interval_seconds, poll_seconds * (1.5 ** min(checks, 30)))


class InstallWatcher:
    def __init__(
        self,
        unit_of_work: Callable[[], ProvisionerUnitOfWork],
        panel: Panel,
        *,
        poll_seconds: float,
        max_interval_seconds: float = 30.0,
        lease_seconds: float = 60.0,
        desired_state_queue: str | None = None,
    ) -> None:
        self._unit_of_work = unit_of_work
        self._panel = panel
        self._desired_state_queue = desired_state_queue
        self._poll = poll_seconds
        self._max_interval = max_interval_seconds
        self._lease = lease_seconds

    async def watch_round(self) -> bool:
        """Lease the due installs and check them concurrently; True when any was due (more may be)."""
        due = await self.due()
        if not due:
            return False
        results = await asyncio.gather(*(self.check_leased(row) for row in due), return_exceptions=True)
        for result in results:
            if isinstance(result, Exception):
                log.warning("install check crashed; its lease will expire and it is checked again", error=repr(result))
        return True

    async def due(self, limit: int = 50) -> list[ProvisioningRow]:
        """The leased rows, as they are once leased (``check_leased`` needs nothing more of the database)."""
        async with self._unit_of_work() as uow:
            due = await uow.provisionings.lease_due(limit=limit, lease_seconds=self._lease)
            in_progress = await uow.provisionings.count_installing()
            await uow.commit()
        INSTALLS_IN_PROGRESS.set(in_progress)
        return due

    async def check(self, order_id: uuid.UUID) -> None:
        """Check one order's install now, whatever its lease (reads its row first)."""
        async with self._unit_of_work() as uow:
            row = await uow.provisionings.get(order_id)  # a read: leaving closes it, the row stays readable
        if row is not None:
            await self.check_leased(row)

    async def check_leased(self, row: ProvisioningRow) -> None:
        """Ask the panel about ``row``'s server and act on the answer (the module docstring)."""
        if row.status != ProvisioningStatus.INSTALLING or row.server_id is None:
            return
        order_id = row.order_id
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
                await self._finish(order_id, installed=server)
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
        async with self._unit_of_work() as uow:
            row = await uow.provisionings.lock(order_id)
            if row is not None and row.status == ProvisioningStatus.INSTALLING:
                row.install_checks += 1
                interval = next_interval(self._poll, self._max_interval, row.install_checks)
                interval *= random.uniform(0.9, 1.1)
                now = datetime.now(UTC)
                next_check = now + timedelta(seconds=interval)
                if row.install_deadline is not None and row.install_deadline > now:
                    # Never sleep past the deadline: the timeout is reported on time.
                    next_check = min(next_check, row.install_deadline)
                elif row.install_deadline is not None:
                    # Past the deadline only an answer can end the watch (the panel erred): ask again after
                    # one poll interval, never at once (a row overdue while the panel errored was re-polled
                    # without pause).
                    next_check = now + timedelta(seconds=self._poll)
                row.next_check_at = next_check
            await uow.commit()

    async def _resume_convergence(
        self, uow: ProvisionerUnitOfWork, order_id: uuid.UUID, installed: PanelServer | None
    ) -> None:
        """The install ended: a desired state that waited for it is recorded as applied when ``installed``
        (the read that found the server installed) already shows it, else it goes back to the desired-state
        queue (a rental that lapsed meanwhile), in this transaction (``service_layer.converge``)."""
        if self._desired_state_queue is None:
            return
        state = await uow.server_states.lock(order_id)
        if state is None or state.applied_version >= state.desired_version:
            return
        if installed is not None and converge_on_install(uow, state, installed):
            return
        uow.send(resend_message(self._desired_state_queue, state))
        log.info("install ended; converging the server to its desired state", desired=state.desired_state)

    async def _finish(
        self,
        order_id: uuid.UUID,
        *,
        installed: PanelServer | None = None,
        failed: FailureReason | None = None,
        message: str = "",
    ) -> None:
        trigger = ProvisioningTrigger.INSTALLED if failed is None else ProvisioningTrigger.INSTALL_FAILED
        async with self._unit_of_work() as uow:
            row = await uow.provisionings.lock(order_id)
            if row is None or row.server_id is None or not PROVISIONING.allows(row.status, trigger):
                await uow.commit()  # finished meanwhile (another instance, or a replay)
                return
            PROVISIONING.transition(row, trigger)
            row.install_checks += 1
            common = {
                "order_id": order_id,
                "correlation_id": row.correlation_id,
                "causation_id": row.paid_event_id,
                "producer": PRODUCER,
            }
            if failed is None:
                event: ServerInstalled | ProvisionFailed = ServerInstalled(
                    **common, payload=ServerInstalledPayload(server_id=row.server_id, identifier=row.identifier or "")
                )
                log.info("server installed", server_id=row.server_id, checks=row.install_checks)
            else:
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
            uow.publish(event)
            await self._resume_convergence(uow, order_id, installed)
            await uow.commit()
        INSTALL_OUTCOMES.labels(failed.value if failed else "installed").inc()
