"""The drift reconciler: one run lists every server the shop and the panel disagree about, and (asked to)
sends the kinds that convergence can put right back to it.

A run (``DriftReconciler.run``), for the periodic job (``DRIFT_INTERVAL_SECONDS``, report-only unless
``DRIFT_AUTO_FIX``) and for ``POST /operator/drift`` (``spawnctl drift``) alike:

1. read every order's records (``provisionings`` with ``server_states``: ``DriftRecords.all``);
2. page through the panel's servers (``GET /api/application/servers?page=N&per_page=100``, through the
   rate gate like every panel call) until the last page; a listing that fails, or a panel whose pages do
   not add up, fails the whole run: a partial listing would invent missing servers;
3. classify (``domain.drift.classify``): the candidates;
4. confirm each candidate with fresh reads: the server read again by id (and by external id when it
   seemed gone: a server deleted while we paged shifts the next page by one, so the listing alone can miss
   one; an orphan is not read again, so a panel full of them costs no extra call), then the order's
   records read again. A candidate is reported only if it is still classified the same way *and* the
   order's records did not change between the first read and the second. The panel is read between the
   two: a suspension, resize or deletion done meanwhile by convergence, creation or the refund job changes
   the rows around it, so it is never mistaken for one done by hand;
5. act: the kinds whose default is ``converge`` (``suspended_by_hand``, ``unsuspended_by_hand``,
   ``limits_differ``) are, with ``fix`` and without ``dry_run``, sent back to convergence: in one
   transaction the order's ``server_states`` row (locked, and only if unchanged since step 4) is marked
   *not applied* (``applied_version`` one below ``desired_version``: the panel was found not to match it,
   so the version is no longer confirmed) and its latest desired state is sent to
   ``provisioner.desired-state`` as ``converge.resend_message`` does. Convergence then reads, acts, reads
   back and records with its own retries, delay queues and dead-letter queue. The other kinds are reported
   only: drift never creates or deletes a server.

Metrics: ``provisioner_drift_servers{kind}`` (the latest run's count per kind),
``provisioner_drift_fixes_total{kind,outcome}``, ``provisioner_drift_runs_total{trigger,outcome}``,
``provisioner_drift_unconfirmed_total`` and ``provisioner_drift_last_run_timestamp_seconds``.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

from prometheus_client import Counter, Gauge

from spawnpoint_contracts import DesiredServerState
from spawnpoint_kit.logs import get_logger

from ..adapters.tables import ProvisioningRow, ServerStateRow
from ..domain.drift import (
    Drift,
    DriftAction,
    DriftKind,
    OrderRecord,
    ServerPage,
    StateRecord,
    classify,
)
from ..domain.panel import Panel, PanelServer
from ..domain.provisioning import ProvisioningStatus
from ..domain.server_state import Desired
from .converge import resend_message
from .unit_of_work import ProvisionerUnitOfWork

log = get_logger(__name__)

PER_PAGE = 100
MAX_PAGES = 10_000
"""A million servers: past it the panel is not paging (or not ours to scan in one run)."""

DRIFT_SERVERS = Gauge(
    "provisioner_drift_servers",
    "Disagreements between Spawnpoint and the panel found by the latest drift run, by kind",
    ["kind"],
)
DRIFT_FIXES = Counter(
    "provisioner_drift_fixes_total",
    "Drifts sent back to convergence, by kind and outcome (converging; changed_meanwhile: the order's row "
    "changed since it was read, left for the next run)",
    ["kind", "outcome"],
)
DRIFT_RUNS = Counter(
    "provisioner_drift_runs_total",
    "Drift runs, by trigger (job, operator) and outcome (ok, failed)",
    ["trigger", "outcome"],
)
DRIFT_UNCONFIRMED = Counter(
    "provisioner_drift_unconfirmed_total",
    "Drift candidates dropped by the confirming reads (a change by the normal paths during the run)",
)
DRIFT_LAST_RUN = Gauge(
    "provisioner_drift_last_run_timestamp_seconds", "Unix time the latest drift run finished (alert if it stops)"
)
for _kind in DriftKind:
    DRIFT_SERVERS.labels(_kind.value).set(0)


class ListingPanel(Panel, Protocol):
    """The panel, with the paged listing drift needs (``adapters/panel.PanelClient``)."""

    async def list_servers(self, *, page: int, per_page: int = PER_PAGE) -> ServerPage: ...


class DriftRecords(Protocol):
    """Every order's records, read outside any unit of work (``adapters/drift_records.py``)."""

    async def all(self) -> list[OrderRecord]: ...

    async def of(self, order_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, OrderRecord]: ...


class ListingError(Exception):
    """The panel's pages do not add up (it ignores ``page``, or never ends): no run on a partial listing."""


class Done(StrEnum):
    REPORTED = "reported"
    """Reported only: the kind's default, or a converge kind in a run without ``fix``."""
    WOULD_CONVERGE = "would_converge"
    """Dry run: ``fix`` would send it back to convergence."""
    CONVERGING = "converging"
    """Sent back to ``provisioner.desired-state``: convergence puts the panel right."""
    CHANGED_MEANWHILE = "changed_meanwhile"
    """The order's row changed since it was read (something else is converging it): left for the next run."""


@dataclass(frozen=True)
class Finding:
    drift: Drift
    done: Done


@dataclass(frozen=True)
class DriftReport:
    trigger: str
    fix: bool
    dry_run: bool
    started_at: datetime
    finished_at: datetime
    pages: int
    servers_seen: int
    orders_seen: int
    foreign: int
    """Servers with a null or non-UUID external id: not ours, never reported."""
    installing: int
    unconfirmed: int
    findings: list[Finding] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        counts = {kind.value: 0 for kind in DriftKind}
        for finding in self.findings:
            counts[finding.drift.kind.value] += 1
        return counts


def order_record(provisioning: ProvisioningRow | None, state: ServerStateRow | None) -> OrderRecord:
    """An order's ``OrderRecord`` from its rows (at least one of them)."""
    order_id = provisioning.order_id if provisioning is not None else state.order_id if state is not None else None
    if order_id is None:
        raise ValueError("an order record needs one of its rows")
    return build_record(
        order_id,
        status=provisioning.status if provisioning is not None else None,
        server_id=provisioning.server_id if provisioning is not None else None,
        refunded_at=provisioning.refunded_at if provisioning is not None else None,
        suspended_at=provisioning.suspended_at if provisioning is not None else None,
        provisioning_updated_at=provisioning.updated_at if provisioning is not None else None,
        state=None
        if state is None
        else {
            "desired_state": state.desired_state,
            "desired_version": state.desired_version,
            "desired_limits": state.desired_limits,
            "applied_state": state.applied_state,
            "applied_version": state.applied_version,
            "failed_version": state.failed_version,
            "waiting": state.waiting,
            "updated_at": state.updated_at,
        },
    )


def build_record(
    order_id: uuid.UUID,
    *,
    status: str | None,
    server_id: int | None,
    refunded_at: datetime | None,
    suspended_at: datetime | None,
    provisioning_updated_at: datetime | None,
    state: dict[str, Any] | None,
) -> OrderRecord:
    """The record from the columns drift reads (the SQL adapter's row, or the rows of the in-memory fake)."""
    found: StateRecord | None = None
    if state is not None:
        limits = state["desired_limits"] or {}
        found = StateRecord(
            desired=Desired(
                state=DesiredServerState(state["desired_state"]),
                version=int(state["desired_version"]),
                limits=dict(limits.get("limits") or {}),
                feature_limits=dict(limits.get("feature_limits") or {}),
            ),
            applied_version=int(state["applied_version"]),
            applied_state=state["applied_state"],
            failed_version=state["failed_version"],
            waiting=state["waiting"],
            updated_at=state["updated_at"],
        )
    fingerprint = (
        status,
        server_id,
        refunded_at,
        suspended_at,
        provisioning_updated_at,
        *(
            (state["desired_version"], state["applied_version"], state["failed_version"], state["waiting"])
            if state is not None
            else ()
        ),
        state["updated_at"] if state is not None else None,
    )
    return OrderRecord(
        order_id=order_id,
        status=ProvisioningStatus(status) if status is not None else None,
        server_id=server_id,
        refunded=refunded_at is not None,
        state=found,
        fingerprint=fingerprint,
    )


class DriftReconciler:
    """Runs of the drift scan (module docstring); one at a time per process."""

    def __init__(
        self,
        unit_of_work: Callable[[], ProvisionerUnitOfWork],
        records: DriftRecords,
        panel: ListingPanel,
        *,
        desired_state_queue: str,
        per_page: int = PER_PAGE,
        max_pages: int = MAX_PAGES,
    ) -> None:
        self._unit_of_work = unit_of_work
        self._records = records
        self._panel = panel
        self._queue = desired_state_queue
        self._per_page = per_page
        self._max_pages = max_pages
        self._lock = asyncio.Lock()
        self.latest: DriftReport | None = None

    async def run(self, *, fix: bool = False, dry_run: bool = False, trigger: str = "operator") -> DriftReport:
        async with self._lock:
            try:
                report = await self._run(fix=fix, dry_run=dry_run, trigger=trigger)
            except Exception:
                DRIFT_RUNS.labels(trigger, "failed").inc()
                raise
        DRIFT_RUNS.labels(trigger, "ok").inc()
        for kind, count in report.counts().items():
            DRIFT_SERVERS.labels(kind).set(count)
        DRIFT_LAST_RUN.set(time.time())
        self.latest = report
        for finding in report.findings:
            drift = finding.drift
            log.warning(
                "drift between Spawnpoint and the panel",
                kind=drift.kind.value,
                order_id=str(drift.order_id) if drift.order_id else None,
                server_id=drift.server_id,
                detail=drift.detail,
                done=finding.done.value,
                trigger=trigger,
            )
        log.info(
            "drift run finished",
            trigger=trigger,
            servers=report.servers_seen,
            orders=report.orders_seen,
            findings=len(report.findings),
            unconfirmed=report.unconfirmed,
        )
        return report

    async def _run(self, *, fix: bool, dry_run: bool, trigger: str) -> DriftReport:
        started = datetime.now(UTC)
        first = {record.order_id: record for record in await self._records.all()}
        servers, pages = await self.listing()
        candidates = classify(first.values(), servers)
        listed = {server.id: server for server in servers}
        confirmed, second = await self._confirm(candidates.drifts, first, listed)
        unconfirmed = len(candidates.drifts) - len(confirmed)
        if unconfirmed:
            DRIFT_UNCONFIRMED.inc(unconfirmed)
        findings = await self._act(confirmed, second, fix=fix or dry_run, dry_run=dry_run)
        return DriftReport(
            trigger=trigger,
            fix=fix,
            dry_run=dry_run,
            started_at=started,
            finished_at=datetime.now(UTC),
            pages=pages,
            servers_seen=len(servers),
            orders_seen=len(first),
            foreign=candidates.foreign,
            installing=candidates.installing,
            unconfirmed=unconfirmed,
            findings=findings,
        )

    async def listing(self) -> tuple[list[PanelServer], int]:
        """Every server on the panel (each once) and the number of pages read."""
        seen: dict[int, PanelServer] = {}
        page = 1
        while True:
            if page > self._max_pages:
                raise ListingError(f"the panel's server list did not end within {self._max_pages} pages")
            result = await self._panel.list_servers(page=page, per_page=self._per_page)
            if result.page != page:
                raise ListingError(f"asked for page {page} of the panel's servers, got page {result.page}")
            new = [server for server in result.servers if server.id not in seen]
            for server in new:
                seen[server.id] = server
            last = (
                not result.servers
                or (result.total_pages is not None and page >= result.total_pages)
                or (result.total_pages is None and len(result.servers) < self._per_page)
            )
            if last:
                return list(seen.values()), page
            if not new:
                raise ListingError(f"page {page} of the panel's server list repeats earlier pages (is `page` ignored?)")
            page += 1

    async def _confirm(
        self, candidates: list[Drift], first: dict[uuid.UUID, OrderRecord], listed: dict[int, PanelServer]
    ) -> tuple[list[Drift], dict[uuid.UUID, OrderRecord]]:
        """The candidates that fresh reads confirm (module docstring, step 4), and the records read again.

        An orphan is confirmed on the records alone (read again: an order that recorded the server, or
        reached it by its external id, meanwhile); its server is not read again, so many orphans cost the
        panel nothing. Every other kind's server is read again, by id and, when it seemed gone, by
        external id."""
        if not candidates:
            return [], {}
        order_ids = {drift.order_id for drift in candidates if drift.order_id is not None}
        fresh: dict[int, PanelServer] = {}
        reread: set[int] = set()
        for drift in candidates:
            record = first.get(drift.order_id) if drift.order_id is not None else None
            ids = {i for i in (drift.server_id, record.server_id if record else None) if i is not None}
            if drift.kind == DriftKind.ORPHAN:
                fresh.update({i: listed[i] for i in ids if i in listed})
            else:
                reread |= ids
        for server_id in sorted(reread):
            fresh.pop(server_id, None)
            server = await self._panel.server(server_id)
            if server is not None:
                fresh[server.id] = server
        for drift in candidates:
            if drift.kind in (DriftKind.DELETED_ON_PANEL, DriftKind.VANISHED) and drift.order_id is not None:
                carrier = await self._panel.server_by_external_id(str(drift.order_id))
                if carrier is not None:
                    fresh[carrier.id] = carrier
        second = await self._records.of(order_ids)
        again = {drift.key: drift for drift in classify(second.values(), fresh.values()).drifts}
        confirmed = []
        for drift in candidates:
            still = again.get(drift.key)
            before = first.get(drift.order_id) if drift.order_id is not None else None
            after = second.get(drift.order_id) if drift.order_id is not None else None
            unchanged = (before.fingerprint if before else None) == (after.fingerprint if after else None)
            if still is not None and unchanged:
                confirmed.append(still)
        return confirmed, second

    async def _act(
        self, drifts: list[Drift], records: dict[uuid.UUID, OrderRecord], *, fix: bool, dry_run: bool
    ) -> list[Finding]:
        outcomes: dict[uuid.UUID, Done] = {}
        findings = []
        for drift in drifts:
            if drift.default_action != DriftAction.CONVERGE or not fix or drift.order_id is None:
                findings.append(Finding(drift, Done.REPORTED))
                continue
            if dry_run:
                findings.append(Finding(drift, Done.WOULD_CONVERGE))
                continue
            done = outcomes.get(drift.order_id)
            if done is None:  # one resend per order, whatever it has drifted in
                kinds = sorted({d.kind.value for d in drifts if d.order_id == drift.order_id})
                done = outcomes[drift.order_id] = await self._send_back(records[drift.order_id], kinds)
            DRIFT_FIXES.labels(drift.kind.value, done.value).inc()
            findings.append(Finding(drift, done))
        return findings

    async def _send_back(self, record: OrderRecord, kinds: list[str]) -> Done:
        """Mark the order's desired state not applied and send it to convergence again (one transaction)."""
        expected = record.state
        if expected is None:  # the converge kinds need an applied desired state: nothing to send back
            return Done.CHANGED_MEANWHILE
        async with self._unit_of_work() as uow:
            row = await uow.server_states.lock(record.order_id)
            if (
                row is None
                or row.desired_version != expected.desired.version
                or row.applied_version != expected.applied_version
                or row.updated_at != expected.updated_at
            ):
                return Done.CHANGED_MEANWHILE
            now = datetime.now(UTC)
            row.applied_version = row.desired_version - 1
            if row.failed_version == row.desired_version:
                row.failed_version = None
            row.last_error = f"drift ({', '.join(kinds)}) found {now.isoformat(timespec='seconds')}: converging again"
            row.updated_at = now
            uow.send(resend_message(self._queue, row))
            await uow.commit()
        log.info("drift sent back to convergence", order_id=str(record.order_id), kinds=kinds)
        return Done.CONVERGING
