"""Invoices, their lines, pending invoice items and invoice payments (basil+ shapes).

The subscription an invoice belongs to is only reachable through ``parent.subscription_details``;
there is no top-level ``subscription``, ``paid`` or ``payment_intent``, and ``payments`` appears only
when expanded. A line's service period is ``lines.data[].period``; ``period_start``/``period_end`` on
the invoice only bound which pending invoice items it picked up.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from stripe_fake.billing.objects.catalog import Price
from stripe_fake.models import JSON

EMBEDDED_LINES = 10


@dataclass(slots=True)
class InvoiceLine:
    """``line_item`` of an invoice: a subscription item's period, a proration or a one-time item."""

    id: str
    invoice: str
    amount: int
    currency: str
    description: str
    period_start: int
    period_end: int
    price: Price
    quantity: int
    subscription: str | None = None
    subscription_item: str | None = None
    invoice_item: str | None = None
    proration: bool = False
    metadata: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> JSON:
        """Public ``line_item`` object."""
        if self.subscription_item is not None:
            parent: JSON = {
                "type": "subscription_item_details",
                "invoice_item_details": None,
                "subscription_item_details": {
                    "invoice_item": self.invoice_item,
                    "proration": self.proration,
                    "proration_details": {"credited_items": None},
                    "subscription": self.subscription,
                    "subscription_item": self.subscription_item,
                },
            }
        else:
            parent = {
                "type": "invoice_item_details",
                "invoice_item_details": {
                    "invoice_item": self.invoice_item,
                    "proration": self.proration,
                    "proration_details": {"credited_items": None},
                    "subscription": self.subscription,
                },
                "subscription_item_details": None,
            }
        return {
            "id": self.id,
            "object": "line_item",
            "amount": self.amount,
            "currency": self.currency,
            "description": self.description,
            "discount_amounts": [],
            "discountable": not self.proration,
            "discounts": [],
            "invoice": self.invoice,
            "livemode": False,
            "metadata": dict(self.metadata),
            "parent": parent,
            "period": {"end": self.period_end, "start": self.period_start},
            "pretax_credit_amounts": [],
            "pricing": {
                "price_details": {"price": self.price.id, "product": self.price.product},
                "type": "price_details",
                "unit_amount_decimal": self.price.unit_amount_decimal,
            },
            "quantity": self.quantity,
            "quantity_decimal": str(self.quantity),
            "subscription": self.subscription,
            "subtotal": self.amount,
            "taxes": [],
        }


@dataclass(slots=True)
class InvoiceItem:
    """``invoiceitem``: a pending amount (a proration) waiting for the customer's next invoice."""

    id: str
    customer: str
    amount: int
    currency: str
    description: str
    period_start: int
    period_end: int
    price: Price
    quantity: int
    created: int
    subscription: str | None
    subscription_item: str | None
    proration: bool
    test_clock: str | None = None
    invoice: str | None = None


@dataclass(slots=True)
class InvoicePayment:
    """``invoice_payment``: the PaymentIntent that pays (or tries to pay) an invoice."""

    id: str
    invoice: str
    amount_requested: int
    currency: str
    payment_intent: str
    created: int
    status: str = "open"
    amount_paid: int | None = None
    paid_at: int | None = None
    canceled_at: int | None = None

    def to_dict(self) -> JSON:
        """Public ``invoice_payment`` object."""
        return {
            "id": self.id,
            "object": "invoice_payment",
            "amount_paid": self.amount_paid,
            "amount_requested": self.amount_requested,
            "created": self.created,
            "currency": self.currency,
            "invoice": self.invoice,
            "is_default": True,
            "livemode": False,
            "payment": {
                "charge": None,
                "payment_intent": self.payment_intent,
                "payment_record": None,
                "type": "payment_intent",
            },
            "status": self.status,
            "status_transitions": {"canceled_at": self.canceled_at, "paid_at": self.paid_at},
        }


@dataclass(slots=True)
class Invoice:
    """``invoice``, plus the dunning state Stripe keeps internally (first failure, retries done)."""

    id: str
    customer: str
    subscription: str | None
    billing_reason: str
    created: int
    currency: str
    period_start: int
    period_end: int
    status: str = "draft"
    lines: list[InvoiceLine] = field(default_factory=list)
    test_clock: str | None = None
    customer_email: str | None = None
    customer_name: str | None = None
    subscription_metadata: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
    description: str | None = None
    number: str | None = None
    attempt_count: int = 0
    attempted: bool = False
    next_payment_attempt: int | None = None
    auto_advance: bool = True
    amount_due_override: int | None = None
    amount_paid: int = 0
    starting_balance: int = 0
    ending_balance: int | None = None
    finalized_at: int | None = None
    paid_at: int | None = None
    voided_at: int | None = None
    marked_uncollectible_at: int | None = None
    uncollectible_reason: str | None = None
    finalize_at: int | None = None
    first_failure_at: int | None = None
    retries_done: int = 0
    payment_intent: str | None = None
    invoice_payment: str | None = None
    webhooks_delivered_at: int | None = None

    @property
    def subtotal(self) -> int:
        """Sum of the lines."""
        return sum(line.amount for line in self.lines)

    @property
    def total(self) -> int:
        """The fake has no discounts or taxes: total equals subtotal."""
        return self.subtotal

    @property
    def amount_due(self) -> int:
        """What the customer owes: the total less any credit balance applied at finalization."""
        if self.amount_due_override is not None:
            return self.amount_due_override
        return max(self.total, 0)

    @property
    def amount_remaining(self) -> int:
        """What is still to be paid."""
        if self.status in ("paid", "void"):
            return 0
        return max(self.amount_due - self.amount_paid, 0)

    def to_dict(self) -> JSON:
        """Public ``invoice`` object (``payments`` is includable, so absent)."""
        finalized = self.finalized_at is not None
        parent: JSON | None = None
        if self.subscription is not None:
            parent = {
                "quote_details": None,
                "subscription_details": {
                    "metadata": dict(self.subscription_metadata),
                    "subscription": self.subscription,
                    "subscription_proration_date": None,
                },
                "type": "subscription_details",
            }
        return {
            "id": self.id,
            "object": "invoice",
            "account_country": "DE",
            "account_name": "Spawnpoint (Stripe stand-in)",
            "account_tax_ids": None,
            "amount_due": self.amount_due,
            "amount_overpaid": 0,
            "amount_paid": self.amount_paid,
            "amount_remaining": self.amount_remaining,
            "amount_shipping": 0,
            "application": None,
            "attempt_count": self.attempt_count,
            "attempted": self.attempted,
            "auto_advance": self.auto_advance,
            "automatic_tax": {
                "disabled_reason": None,
                "enabled": False,
                "liability": None,
                "provider": None,
                "status": None,
            },
            "automatically_finalizes_at": self.finalize_at if self.status == "draft" else None,
            "billing_reason": self.billing_reason,
            "collection_method": "charge_automatically",
            "confirmation_secret": None,
            "created": self.created,
            "currency": self.currency,
            "custom_fields": None,
            "customer": self.customer,
            "customer_account": None,
            "customer_address": None,
            "customer_email": self.customer_email,
            "customer_name": self.customer_name,
            "customer_phone": None,
            "customer_shipping": None,
            "customer_tax_exempt": "none",
            "customer_tax_ids": [],
            "default_payment_method": None,
            "default_source": None,
            "default_tax_rates": [],
            "description": self.description,
            "discounts": [],
            "due_date": None,
            "effective_at": self.finalized_at,
            "ending_balance": self.ending_balance,
            "footer": None,
            "from_invoice": None,
            "hosted_invoice_url": f"https://invoice.stripe.com/i/acct_fake/test_{self.id}" if finalized else None,
            "invoice_pdf": f"https://pay.stripe.com/invoice/acct_fake/test_{self.id}/pdf" if finalized else None,
            "issuer": {"account": None, "type": "self"},
            "last_finalization_error": None,
            "latest_revision": None,
            "lines": {
                "object": "list",
                "data": [line.to_dict() for line in self.lines[:EMBEDDED_LINES]],
                "has_more": len(self.lines) > EMBEDDED_LINES,
                "total_count": len(self.lines),
                "url": f"/v1/invoices/{self.id}/lines",
            },
            "livemode": False,
            "metadata": dict(self.metadata),
            "next_payment_attempt": self.next_payment_attempt,
            "number": self.number,
            "on_behalf_of": None,
            "parent": parent,
            "payment_settings": {
                "default_mandate": None,
                "payment_method_options": None,
                "payment_method_types": None,
            },
            "period_end": self.period_end,
            "period_start": self.period_start,
            "post_payment_credit_notes_amount": 0,
            "pre_payment_credit_notes_amount": 0,
            "receipt_number": None,
            "rendering": None,
            "shipping_cost": None,
            "shipping_details": None,
            "starting_balance": self.starting_balance,
            "statement_descriptor": None,
            "status": self.status,
            "status_details": (
                {"uncollectible": {"reason": self.uncollectible_reason}} if self.status == "uncollectible" else None
            ),
            "status_transitions": {
                "finalized_at": self.finalized_at,
                "marked_uncollectible_at": self.marked_uncollectible_at,
                "paid_at": self.paid_at,
                "voided_at": self.voided_at,
            },
            "subtotal": self.subtotal,
            "subtotal_excluding_tax": self.subtotal,
            "test_clock": self.test_clock,
            "threshold_reason": None,
            "total": self.total,
            "total_discount_amounts": [],
            "total_excluding_tax": self.total,
            "total_pretax_credit_amounts": [],
            "total_taxes": [],
            "webhooks_delivered_at": self.webhooks_delivered_at,
        }
