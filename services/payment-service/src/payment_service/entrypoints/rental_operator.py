"""Operator endpoints for rentals (operator token only: 403 for a customer's), what ``spawnctl rental`` calls.

- ``GET /operator/rentals/{order_id}``: the rental as recorded (phase, what is paid for, deadlines, hold,
  the server state it asks for, the next deadline), its history and the subscription's invoices read live
  from Stripe. 404 when payment-service has no rental for the order.
- ``POST /operator/rentals/reconcile`` ``{"dry_run": true|false, "order_id": optional}``: the reconciler's
  round now, over every subscription rental or one; per order the phase before and after and the causes
  (``service_layer.rental_operations``). A dry run writes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from spawnpoint_kit.auth import OperatorPrincipal

from ..domain.rental import InvoiceFacts, RentalPolicy
from ..service_layer.rental_deadlines import RentalReconciler
from ..service_layer.rental_operations import (
    ReconcileReport,
    RentalNotFound,
    RentalOperations,
    RentalReads,
    RentalView,
)
from ..service_layer.unit_of_work import PaymentUnitOfWork

AUTH_RESPONSES: dict[int | str, dict[str, str]] = {
    401: {"description": "Missing or invalid token"},
    403: {"description": "Not an operator token"},
}


class DeadlineOut(BaseModel):
    due_at: datetime
    due_kind: str


class TransitionOut(BaseModel):
    version: int
    from_phase: str
    to_phase: str
    cause: str
    via: str
    invoice_id: str | None
    stripe_event_id: str | None
    at: datetime


class InvoiceOut(BaseModel):
    id: str
    status: str
    billing_reason: str | None
    amount_due: int
    amount_paid: int
    currency: str
    attempt_count: int
    created: datetime | None


class RentalOut(BaseModel):
    order_id: uuid.UUID
    user_id: str
    kind: str
    plan_id: str
    period_id: str
    phase: str
    version: int
    amount: int | None = Field(description="The order's price per period (minor units)")
    currency: str | None
    subscription_id: str | None
    customer_id: str | None
    invoice_id: str | None = Field(description="The latest invoice the rental was assessed with")
    paid_through: datetime | None
    renews_at: datetime | None
    ends_at: datetime | None
    next_payment_attempt: datetime | None
    attempt_count: int
    grace_until: datetime | None
    terminate_at: datetime | None
    warned_at: datetime | None
    hold: str | None
    desired_state: str | None
    desired_version: int
    next_deadline: DeadlineOut | None
    synced_at: datetime | None = Field(description="When Stripe's subscription was last read")
    created_at: datetime
    updated_at: datetime
    history: list[TransitionOut] = Field(description="Every move of the rental, oldest first")
    invoices: list[InvoiceOut] | None = Field(
        description="The subscription's invoices as Stripe has them now, newest first (null: no subscription, "
        "or Stripe did not answer: see invoices_error)"
    )
    invoices_error: str | None = None


class ReconcileIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dry_run: bool = Field(description="Read Stripe and report what would change, writing nothing")
    order_id: uuid.UUID | None = Field(default=None, description="One order; every subscription rental if null")
    limit: int = Field(default=1000, ge=1, le=10_000, description="At most this many rentals (least recently read)")


class ReconciledOut(BaseModel):
    order_id: uuid.UUID
    subscription_id: str | None
    before: str
    after: str
    causes: list[str]
    outcome: str = Field(description="changed, unchanged, no_subscription, unknown_subscription or error")
    paid_through_before: datetime | None
    paid_through_after: datetime | None
    error: str | None


class ReconcileOut(BaseModel):
    dry_run: bool
    checked: int
    changed: int
    failed: int
    truncated: bool = Field(description="More rentals than the limit: run again for the rest")
    results: list[ReconciledOut]


def rental_out(view: RentalView) -> RentalOut:
    r, p = view.rental, view.payment
    return RentalOut(
        order_id=r.order_id,
        user_id=r.user_id,
        kind=r.kind,
        plan_id=r.plan_id,
        period_id=r.period_id,
        phase=r.phase.value,
        version=r.version,
        amount=p.amount if p else None,
        currency=p.currency if p else None,
        subscription_id=r.subscription_id,
        customer_id=r.customer_id,
        invoice_id=r.invoice_id,
        paid_through=r.paid_through,
        renews_at=r.renews_at,
        ends_at=r.ends_at,
        next_payment_attempt=r.next_payment_attempt,
        attempt_count=r.attempt_count,
        grace_until=r.grace_until,
        terminate_at=r.terminate_at,
        warned_at=r.warned_at,
        hold=r.hold,
        desired_state=r.desired_state,
        desired_version=r.desired_version,
        next_deadline=DeadlineOut(due_at=r.due_at, due_kind=r.due_kind) if r.due_at and r.due_kind else None,
        synced_at=r.synced_at,
        created_at=r.created_at,
        updated_at=r.updated_at,
        history=[
            TransitionOut(
                version=t.version,
                from_phase=t.from_phase,
                to_phase=t.to_phase,
                cause=t.cause,
                via=t.via,
                invoice_id=t.invoice_id,
                stripe_event_id=t.stripe_event_id,
                at=t.at,
            )
            for t in view.history
        ],
        invoices=[_invoice(i) for i in view.invoices] if view.invoices is not None else None,
        invoices_error=view.invoices_error,
    )


def _invoice(invoice: InvoiceFacts) -> InvoiceOut:
    return InvoiceOut(
        id=invoice.id,
        status=invoice.status,
        billing_reason=invoice.billing_reason,
        amount_due=invoice.amount_due,
        amount_paid=invoice.amount_paid,
        currency=invoice.currency,
        attempt_count=invoice.attempt_count,
        created=invoice.created,
    )


def reconcile_out(report: ReconcileReport) -> ReconcileOut:
    return ReconcileOut(
        dry_run=report.dry_run,
        checked=len(report.results),
        changed=report.changed,
        failed=report.failed,
        truncated=report.truncated,
        results=[
            ReconciledOut(
                order_id=r.order_id,
                subscription_id=r.subscription_id,
                before=r.before,
                after=r.after,
                causes=list(r.causes),
                outcome=r.outcome,
                paid_through_before=r.paid_through_before,
                paid_through_after=r.paid_through_after,
                error=r.error,
            )
            for r in report.results
        ],
    )


def rental_operator_router(
    unit_of_work: Callable[[], PaymentUnitOfWork],
    stripe: RentalReads,
    reconciler: RentalReconciler,
    policy: RentalPolicy,
) -> APIRouter:
    """The rental operator endpoints over this service's unit of work, Stripe gateway and reconciler."""
    operations = RentalOperations(unit_of_work, stripe, reconciler, policy)
    router = APIRouter(prefix="/operator/rentals", tags=["operations"])

    @router.get(
        "/{order_id}",
        response_model=RentalOut,
        summary="One rental: its state, history and the subscription's invoices (operators only)",
        responses={**AUTH_RESPONSES, 404: {"description": "No rental for this order"}},
    )
    async def show_rental(order_id: uuid.UUID, _: OperatorPrincipal) -> RentalOut:
        try:
            view = await operations.show(order_id)
        except RentalNotFound as exc:
            raise HTTPException(status_code=404, detail="no rental for this order") from exc
        return rental_out(view)

    @router.post(
        "/reconcile",
        response_model=ReconcileOut,
        summary="Run the reconciler now over every subscription rental or one; dry_run writes nothing",
        responses={**AUTH_RESPONSES, 404: {"description": "order_id names no rental"}},
    )
    async def reconcile_rentals(body: ReconcileIn, _: OperatorPrincipal) -> ReconcileOut:
        try:
            report = await operations.reconcile(dry_run=body.dry_run, order_id=body.order_id, limit=body.limit)
        except RentalNotFound as exc:
            raise HTTPException(status_code=404, detail="no rental for this order") from exc
        return reconcile_out(report)

    return router
