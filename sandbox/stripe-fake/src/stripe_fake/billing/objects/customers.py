"""Customers and their card payment methods.

A payment method remembers which magic test token it was made from (its :class:`CardBehavior`): that,
not the card number, decides what charging it does, as in Stripe's test mode.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from stripe_fake.models import JSON


@dataclass(frozen=True, slots=True)
class CardBehavior:
    """What a test card does: attach, charge, and whether a charge on it is later disputed."""

    brand: str
    last4: str
    attachable: bool = True
    charge_decline_code: str | None = None
    attach_decline_code: str | None = None
    dispute_reason: str | None = None
    dispute_inquiry: bool = False
    funding: str = "credit"
    country: str = "US"

    @property
    def charges_succeed(self) -> bool:
        """Whether charging this card succeeds."""
        return self.charge_decline_code is None


@dataclass(slots=True)
class Customer:
    """``customer``."""

    id: str
    created: int
    invoice_prefix: str
    email: str | None = None
    name: str | None = None
    description: str | None = None
    phone: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    test_clock: str | None = None
    default_payment_method: str | None = None
    balance: int = 0
    delinquent: bool = False
    currency: str | None = None
    next_invoice_sequence: int = 1

    def to_dict(self) -> JSON:
        """Public ``customer`` object (``subscriptions``/``sources`` are includable, so absent)."""
        return {
            "id": self.id,
            "object": "customer",
            "address": None,
            "balance": self.balance,
            "business_name": None,
            "created": self.created,
            "currency": self.currency,
            "customer_account": None,
            "default_source": None,
            "delinquent": self.delinquent,
            "description": self.description,
            "discount": None,
            "email": self.email,
            "individual_name": None,
            "invoice_prefix": self.invoice_prefix,
            "invoice_settings": {
                "custom_fields": None,
                "default_payment_method": self.default_payment_method,
                "footer": None,
                "rendering_options": None,
            },
            "livemode": False,
            "metadata": dict(self.metadata),
            "name": self.name,
            "next_invoice_sequence": self.next_invoice_sequence,
            "phone": self.phone,
            "preferred_locales": [],
            "shipping": None,
            "tax_exempt": "none",
            "test_clock": self.test_clock,
        }


@dataclass(slots=True)
class PaymentMethod:
    """``payment_method`` of type ``card``."""

    id: str
    created: int
    behavior: CardBehavior
    token: str
    customer: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    billing_name: str | None = None
    billing_email: str | None = None
    exp_month: int = 12
    exp_year: int = 2034

    def to_dict(self) -> JSON:
        """Public ``payment_method`` object (only the ``card`` sub-hash, as for a card)."""
        card = self.behavior
        return {
            "id": self.id,
            "object": "payment_method",
            "allow_redisplay": "unspecified",
            "billing_details": {
                "address": {
                    "city": None,
                    "country": None,
                    "line1": None,
                    "line2": None,
                    "postal_code": None,
                    "state": None,
                },
                "email": self.billing_email,
                "name": self.billing_name,
                "phone": None,
                "tax_id": None,
            },
            "card": {
                "brand": card.brand,
                "checks": {"address_line1_check": None, "address_postal_code_check": None, "cvc_check": "pass"},
                "country": card.country,
                "display_brand": card.brand,
                "exp_month": self.exp_month,
                "exp_year": self.exp_year,
                "fingerprint": f"fp{card.last4}{card.brand[:4]}",
                "funding": card.funding,
                "generated_from": None,
                "last4": card.last4,
                "networks": {"available": [card.brand], "preferred": None},
                "regulated_status": "unregulated",
                "three_d_secure_usage": {"supported": True},
                "wallet": None,
            },
            "created": self.created,
            "customer": self.customer,
            "customer_account": None,
            "livemode": False,
            "metadata": dict(self.metadata),
            "type": "card",
        }
