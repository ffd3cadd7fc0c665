"""Disputes (chargebacks and inquiries) on charges."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from stripe_fake.models import JSON

EVIDENCE_FIELDS = (
    "access_activity_log",
    "billing_address",
    "cancellation_policy",
    "cancellation_policy_disclosure",
    "cancellation_rebuttal",
    "customer_communication",
    "customer_email_address",
    "customer_name",
    "customer_purchase_ip",
    "customer_signature",
    "duplicate_charge_documentation",
    "duplicate_charge_explanation",
    "duplicate_charge_id",
    "product_description",
    "receipt",
    "refund_policy",
    "refund_policy_disclosure",
    "refund_refusal_explanation",
    "service_date",
    "service_documentation",
    "shipping_address",
    "shipping_carrier",
    "shipping_date",
    "shipping_documentation",
    "shipping_tracking_number",
    "uncategorized_file",
    "uncategorized_text",
)
CLOSED_STATUSES = frozenset({"won", "lost", "warning_closed", "prevented"})


@dataclass(slots=True)
class BalanceTransaction:
    """A dispute's debit or reinstatement of funds (embedded in ``balance_transactions``)."""

    id: str
    amount: int
    fee: int
    currency: str
    created: int
    description: str

    def to_dict(self) -> JSON:
        """``balance_transaction`` object (trimmed)."""
        return {
            "id": self.id,
            "object": "balance_transaction",
            "amount": self.amount,
            "available_on": self.created,
            "created": self.created,
            "currency": self.currency,
            "description": self.description,
            "exchange_rate": None,
            "fee": self.fee,
            "fee_details": [],
            "net": self.amount - self.fee,
            "reporting_category": "dispute" if self.amount < 0 else "dispute_reversal",
            "source": None,
            "status": "available",
            "type": "adjustment",
        }


@dataclass(slots=True)
class Dispute:
    """``dispute``."""

    id: str
    charge: str
    payment_intent: str | None
    amount: int
    currency: str
    reason: str
    status: str
    created: int
    inquiry: bool
    evidence: dict[str, Any] = field(default_factory=dict)
    submission_count: int = 0
    metadata: dict[str, str] = field(default_factory=dict)
    balance_transactions: list[BalanceTransaction] = field(default_factory=list)
    due_by: int = 0

    @property
    def closed(self) -> bool:
        """Whether the dispute has an outcome."""
        return self.status in CLOSED_STATUSES

    def to_dict(self) -> JSON:
        """Public ``dispute`` object."""
        evidence: JSON = {name: self.evidence.get(name) for name in EVIDENCE_FIELDS}
        evidence["enhanced_evidence"] = {}
        return {
            "id": self.id,
            "object": "dispute",
            "amount": self.amount,
            "balance_transactions": [txn.to_dict() for txn in self.balance_transactions],
            "charge": self.charge,
            "created": self.created,
            "currency": self.currency,
            "enhanced_eligibility_types": [],
            "evidence": evidence,
            "evidence_details": {
                "due_by": 0 if self.closed else self.due_by,
                "enhanced_eligibility": {},
                "has_evidence": any(value is not None for value in self.evidence.values()),
                "past_due": False,
                "submission_count": self.submission_count,
                "submission_method": "manual_api" if self.submission_count else None,
            },
            "intended_submission_method": None,
            "is_charge_refundable": self.inquiry,
            "livemode": False,
            "metadata": dict(self.metadata),
            "network_reason_code": None,
            "payment_intent": self.payment_intent,
            "payment_method_details": {
                "card": {
                    "brand": "visa",
                    "case_type": "inquiry" if self.inquiry else "chargeback",
                    "network_reason_code": None,
                },
                "type": "card",
            },
            "reason": self.reason,
            "status": self.status,
        }
