"""The drift reconciler's two doors: the periodic job and the operator endpoint (``spawnctl drift``).

- ``POST /operator/drift?fix=false&dry_run=false`` (operator token): one run now, its report as JSON.
  ``fix`` sends the kinds whose default is ``converge`` back to convergence; ``dry_run`` says what ``fix``
  would do and changes nothing. 503 when the panel cannot be listed (nothing is reported from a partial
  listing). A run started while another is going waits for it (one at a time per process).
- ``GET /operator/drift``: the latest run's report in this process (the job's or an operator's); 404
  before the first.
- ``drift_job``: a run every ``DRIFT_INTERVAL_SECONDS`` (the first one interval after the start, so a
  restart adds no panel listing), fixing only with ``DRIFT_AUTO_FIX``.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field

from spawnpoint_kit.auth import OperatorPrincipal
from spawnpoint_kit.logs import get_logger
from spawnpoint_kit.periodic import BackgroundJob, periodic

from ..domain.drift import DriftAction, DriftKind
from ..domain.failures import classify
from ..domain.panel import PanelError, PanelUnreachable
from ..service_layer.drift import Done, DriftReconciler, DriftReport, ListingError

log = get_logger(__name__)


class FindingOut(BaseModel):
    kind: DriftKind
    order_id: uuid.UUID | None
    server_id: int | None
    external_id: str | None
    detail: str = Field(description="What differs, in words.")
    default_action: DriftAction
    done: Done = Field(description="reported, would_converge (dry run), converging, changed_meanwhile.")


class DriftReportOut(BaseModel):
    trigger: str = Field(description="job or operator")
    fix: bool
    dry_run: bool
    started_at: datetime
    finished_at: datetime
    pages: int = Field(description="Pages of the panel's server list read.")
    servers_seen: int
    orders_seen: int
    foreign: int = Field(description="Servers with a null or non-UUID external id: not ours, never reported.")
    installing: int = Field(description="Servers still installing: left alone.")
    unconfirmed: int = Field(description="Candidates the confirming reads dropped (changed during the run).")
    counts: dict[str, int] = Field(description="Findings per kind (every kind, zeros included).")
    findings: list[FindingOut]


def report_out(report: DriftReport) -> DriftReportOut:
    return DriftReportOut(
        trigger=report.trigger,
        fix=report.fix,
        dry_run=report.dry_run,
        started_at=report.started_at,
        finished_at=report.finished_at,
        pages=report.pages,
        servers_seen=report.servers_seen,
        orders_seen=report.orders_seen,
        foreign=report.foreign,
        installing=report.installing,
        unconfirmed=report.unconfirmed,
        counts=report.counts(),
        findings=[
            FindingOut(
                kind=f.drift.kind,
                order_id=f.drift.order_id,
                server_id=f.drift.server_id,
                external_id=f.drift.external_id,
                detail=f.drift.detail,
                default_action=f.drift.default_action,
                done=f.done,
            )
            for f in report.findings
        ],
    )


def drift_router(reconciler: DriftReconciler) -> APIRouter:
    router = APIRouter(prefix="/operator/drift", tags=["operations"])

    @router.post(
        "",
        response_model=DriftReportOut,
        summary="Find every server Spawnpoint and the panel disagree about (and, with fix, converge them)",
        responses={503: {"description": "The panel could not be listed; nothing was reported or changed"}},
    )
    async def run(
        principal: OperatorPrincipal,
        fix: bool = Query(default=False, description="Send the converge kinds back to convergence."),
        dry_run: bool = Query(default=False, description="Show what fix would do; change nothing."),
    ) -> DriftReportOut:
        log.info("drift run asked by an operator", operator=principal.user_id, fix=fix, dry_run=dry_run)
        try:
            report = await reconciler.run(fix=fix, dry_run=dry_run, trigger="operator")
        except (PanelError, PanelUnreachable) as exc:
            message = f"the panel could not be listed: {classify(exc).message}"
            raise HTTPException(status_code=503, detail=message) from exc
        except ListingError as exc:
            raise HTTPException(status_code=503, detail=str(exc)) from exc
        return report_out(report)

    @router.get(
        "",
        response_model=DriftReportOut,
        summary="The latest drift run's report in this process",
        responses={404: {"description": "No run yet since this process started"}},
    )
    async def latest(_: OperatorPrincipal) -> DriftReportOut:
        if reconciler.latest is None:
            raise HTTPException(status_code=404, detail="no drift run yet since this process started")
        return report_out(reconciler.latest)

    return router


def drift_job(reconciler: DriftReconciler, *, every: float, fix: bool) -> BackgroundJob:
    """A run every ``every`` seconds, the first one ``every`` seconds after the start."""
    started = False

    async def step() -> None:
        nonlocal started
        if not started:
            started = True
            return
        await reconciler.run(fix=fix, trigger="job")

    return periodic(step, every=every, name="drift")
