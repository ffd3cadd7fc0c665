"""Disputes: opened by the "cardholder" (a control route, or a dispute test card), decided by evidence.

Scenario H (won): ``charge.dispute.created`` (``needs_response``) → ``charge.dispute.funds_withdrawn``;
submitting ``evidence[uncategorized_text]=winning_evidence`` → ``charge.dispute.updated``
(``under_review``) → ``charge.dispute.closed`` (``won``) → ``charge.dispute.funds_reinstated``.
Scenario H′ (lost): the same with ``losing_evidence``, or ``POST /v1/disputes/{id}/close``, and no
reinstatement. Inquiries (``pm_card_createDisputeInquiry``) use the ``warning_*`` statuses, move no
funds and close as ``warning_closed``. In test mode Stripe decides at once; emitting ``updated`` before
``closed`` is the reference's modelling choice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from stripe_fake import ids
from stripe_fake.billing.common import opt_bool, updated_metadata
from stripe_fake.billing.objects import BalanceTransaction, Dispute, PaymentMethod
from stripe_fake.billing.objects.disputes import EVIDENCE_FIELDS
from stripe_fake.billing.periods import DAY
from stripe_fake.billing.state import BillingState, diff
from stripe_fake.context import ApiContext
from stripe_fake.errors import invalid_request, resource_missing
from stripe_fake.events import AUTOMATIC, RequestInfo
from stripe_fake.listing import LIST_PARAMS, created_filter, paginate
from stripe_fake.models import Charge
from stripe_fake.params import opt_dict, opt_str, reject_unknown

REASONS = [
    "bank_cannot_process",
    "check_returned",
    "credit_not_processed",
    "customer_initiated",
    "debit_not_authorized",
    "duplicate",
    "fraudulent",
    "general",
    "incorrect_account_details",
    "insufficient_funds",
    "noncompliant",
    "product_not_received",
    "product_unacceptable",
    "subscription_canceled",
    "unrecognized",
]
DISPUTE_FEE = 1500
EVIDENCE_DUE_DAYS = 7


Defer = Callable[[Callable[[], None]], None]


def run_now(action: Callable[[], None]) -> None:
    """The trivial :data:`Defer`: no deferral."""
    action()


class DisputeService:
    """Disputes API plus the cardholder's side."""

    def __init__(self, state: BillingState, defer: Defer = run_now) -> None:
        self._state = state
        self._defer = defer

    # --- the cardholder ---------------------------------------------------------------------------

    def open(self, charge: Charge, *, reason: str, inquiry: bool, at: int, request: RequestInfo = AUTOMATIC) -> Dispute:
        """The cardholder disputes ``charge``."""
        if charge.status != "succeeded":
            raise invalid_request(f"Charge {charge.id} did not succeed, so it cannot be disputed.", "charge")
        if charge.id in self._state.store.dispute_by_charge:
            raise invalid_request(f"Charge {charge.id} already has a dispute.", "charge")
        dispute = Dispute(
            id=ids.new_id("dp_1", 23),
            charge=charge.id,
            payment_intent=charge.payment_intent,
            amount=charge.amount - charge.amount_refunded,
            currency=charge.currency,
            reason=reason,
            status="warning_needs_response" if inquiry else "needs_response",
            created=at,
            inquiry=inquiry,
            due_by=at + EVIDENCE_DUE_DAYS * DAY,
        )
        store = self._state.store
        store.disputes[dispute.id] = dispute
        store.dispute_by_charge[charge.id] = dispute.id
        charge.disputed = True
        self._emit("charge.dispute.created", dispute, at, request)
        if not inquiry:
            dispute.balance_transactions.append(self._transaction(dispute, -dispute.amount, DISPUTE_FEE, at))
            self._emit("charge.dispute.funds_withdrawn", dispute, at, request)
        return dispute

    def after_successful_charge(self, charge: Charge, pm: PaymentMethod, at: int) -> None:
        """Dispute test cards: the charge succeeds, then (right after the operation that charged, as in
        test mode "shortly after") the cardholder disputes it."""
        reason = pm.behavior.dispute_reason
        if reason is None:
            return
        inquiry = pm.behavior.dispute_inquiry

        def dispute_it() -> None:
            if charge.id not in self._state.store.dispute_by_charge and charge.status == "succeeded":
                self.open(charge, reason=reason, inquiry=inquiry, at=at)

        self._defer(dispute_it)

    # --- API ----------------------------------------------------------------------------------------

    def retrieve(self, ctx: ApiContext, dispute_id: str) -> dict[str, Any]:
        """``GET /v1/disputes/{id}``."""
        reject_unknown(ctx.params, {"expand"})
        return self.get(dispute_id).to_dict()

    def list_disputes(self, ctx: ApiContext) -> dict[str, Any]:
        """``GET /v1/disputes`` (``charge``, ``payment_intent``)."""
        params = ctx.params
        reject_unknown(params, LIST_PARAMS | {"charge", "created", "payment_intent"})
        charge = opt_str(params, "charge")
        intent = opt_str(params, "payment_intent")
        in_range = created_filter(params)
        disputes = [
            d
            for d in reversed(self._state.store.disputes.values())
            if (charge is None or d.charge == charge)
            and (intent is None or d.payment_intent == intent)
            and in_range(d.created)
        ]
        return paginate(
            disputes,
            id_of=lambda d: d.id,
            render=lambda d: d.to_dict(),
            params=params,
            url="/v1/disputes",
            kind="dispute",
        )

    def update(self, ctx: ApiContext, dispute_id: str) -> dict[str, Any]:
        """``POST /v1/disputes/{id}``: evidence (``winning_evidence``/``losing_evidence`` decide it)."""
        params = ctx.params
        reject_unknown(params, {"evidence", "expand", "intended_submission_method", "metadata", "submit"})
        dispute = self.get(dispute_id)
        if dispute.closed:
            raise invalid_request(f"This dispute is already closed ({dispute.status}); it cannot be updated.")
        evidence = opt_dict(params, "evidence") or {}
        reject_unknown(evidence, set(EVIDENCE_FIELDS) | {"enhanced_evidence"}, "evidence")
        submit = opt_bool(params, "submit") is not False
        at = self._charge_time(dispute)
        request = ctx.cause()
        before = dispute.to_dict()
        for key in evidence:
            if key != "enhanced_evidence":
                dispute.evidence[key] = opt_str(evidence, key, f"evidence[{key}]")
        if "metadata" in params:
            dispute.metadata = updated_metadata(dispute.metadata, params)
        if submit:
            dispute.submission_count += 1
            dispute.status = "warning_under_review" if dispute.inquiry else "under_review"
        previous = diff(before, dispute.to_dict())
        if previous:
            self._state.emit("charge.dispute.updated", dispute.to_dict(), at=at, request=request, previous=previous)
        text = dispute.evidence.get("uncategorized_text")
        if submit and text in ("winning_evidence", "losing_evidence"):
            self._close(dispute, won=text == "winning_evidence", at=at, request=request)
        return dispute.to_dict()

    def close(self, ctx: ApiContext, dispute_id: str) -> dict[str, Any]:
        """``POST /v1/disputes/{id}/close``: accept the dispute (it is lost)."""
        reject_unknown(ctx.params, {"expand"})
        dispute = self.get(dispute_id)
        if dispute.closed:
            raise invalid_request(f"This dispute is already closed ({dispute.status}).")
        self._close(dispute, won=False, at=self._charge_time(dispute), request=ctx.cause())
        return dispute.to_dict()

    def get(self, dispute_id: str) -> Dispute:
        """A dispute, or ``No such dispute``."""
        dispute = self._state.store.disputes.get(dispute_id)
        if dispute is None:
            raise resource_missing("dispute", dispute_id, "dispute")
        return dispute

    # --- internals --------------------------------------------------------------------------------

    def _close(self, dispute: Dispute, *, won: bool, at: int, request: RequestInfo) -> None:
        if dispute.inquiry:
            dispute.status = "warning_closed"
        else:
            dispute.status = "won" if won else "lost"
        self._emit("charge.dispute.closed", dispute, at, request)
        if won and not dispute.inquiry:
            dispute.balance_transactions.append(self._transaction(dispute, dispute.amount, -DISPUTE_FEE, at))
            self._emit("charge.dispute.funds_reinstated", dispute, at, request)

    def _emit(self, event_type: str, dispute: Dispute, at: int, request: RequestInfo) -> None:
        self._state.emit(event_type, dispute.to_dict(), at=at, request=request)

    def _transaction(self, dispute: Dispute, amount: int, fee: int, at: int) -> BalanceTransaction:
        kind = "withdrawal" if amount < 0 else "reversal"
        return BalanceTransaction(
            id=ids.new_id("txn_1", 23),
            amount=amount,
            fee=fee,
            currency=dispute.currency,
            created=at,
            description=f"Chargeback {kind} for {dispute.charge}",
        )

    def _charge_time(self, dispute: Dispute) -> int:
        """Now for the disputed charge's customer (its test clock, if any)."""
        charge = self._state.payments.charges.get(dispute.charge)
        if charge is not None and charge.customer is not None:
            return self._state.now_for_customer(charge.customer)
        return self._state.now(None)
