"""Subscriptions and subscription items, with basil+ placement: the billing period lives on the items.

Besides the public fields, a subscription keeps what the renewal processor needs: the billing cycle
anchor and how many intervals past it the current period ends (``anchor_steps``), so every period end
is ``anchor + n intervals`` on the calendar, and whether ``trial_will_end`` was already sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from stripe_fake.billing.objects.catalog import Price
from stripe_fake.models import JSON

LIVE_STATUSES = frozenset({"trialing", "active", "past_due", "unpaid"})
"""Statuses in which time still moves a subscription forward (renewals, scheduled cancellation)."""


@dataclass(slots=True)
class SubscriptionItem:
    """``subscription_item``: one price and quantity on a subscription."""

    id: str
    subscription: str
    price: Price
    quantity: int
    created: int
    current_period_start: int
    current_period_end: int
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def amount(self) -> int:
        """What one full period of this item costs."""
        return self.price.unit_amount * self.quantity

    def to_dict(self) -> JSON:
        """Public ``subscription_item`` object (``billed_until`` is includable, so absent)."""
        return {
            "id": self.id,
            "object": "subscription_item",
            "billing_thresholds": None,
            "created": self.created,
            "current_period_end": self.current_period_end,
            "current_period_start": self.current_period_start,
            "current_trial": None,
            "discounts": [],
            "metadata": dict(self.metadata),
            "plan": self.price.to_plan(),
            "price": self.price.to_dict(),
            "quantity": self.quantity,
            "subscription": self.subscription,
            "tax_rates": [],
        }


@dataclass(slots=True)
class Subscription:
    """``subscription``."""

    id: str
    customer: str
    status: str
    items: list[SubscriptionItem]
    created: int
    currency: str
    interval: str
    interval_count: int
    billing_cycle_anchor: int
    anchor_steps: int
    metadata: dict[str, str] = field(default_factory=dict)
    test_clock: str | None = None
    latest_invoice: str | None = None
    cancel_at: int | None = None
    cancel_at_period_end: bool = False
    canceled_at: int | None = None
    ended_at: int | None = None
    cancellation_reason: str | None = None
    cancellation_feedback: str | None = None
    cancellation_comment: str | None = None
    default_payment_method: str | None = None
    description: str | None = None
    trial_start: int | None = None
    trial_end: int | None = None
    trial_will_end_sent: bool = False

    @property
    def start_date(self) -> int:
        """When the subscription started (its creation, in the fake)."""
        return self.created

    @property
    def current_period_start(self) -> int:
        """Start of the current period (the same on every item: one billing interval per subscription)."""
        return min(item.current_period_start for item in self.items) if self.items else self.created

    @property
    def current_period_end(self) -> int:
        """End of the current period."""
        return max(item.current_period_end for item in self.items) if self.items else self.created

    @property
    def live(self) -> bool:
        """Whether time still changes this subscription."""
        return self.status in LIVE_STATUSES

    def items_dict(self) -> JSON:
        """The ``items`` list object (also what ``previous_attributes.items`` holds on renewals)."""
        return {
            "object": "list",
            "data": [item.to_dict() for item in self.items],
            "has_more": False,
            "total_count": len(self.items),
            "url": f"/v1/subscription_items?subscription={self.id}",
        }

    def to_dict(self) -> JSON:
        """Public ``subscription`` object."""
        return {
            "id": self.id,
            "object": "subscription",
            "application": None,
            "application_fee_percent": None,
            "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None},
            "billing_cycle_anchor": self.billing_cycle_anchor,
            "billing_cycle_anchor_config": None,
            "billing_mode": {"flexible": {"proration_discounts": "included"}, "type": "flexible", "updated_at": None},
            "billing_schedules": [],
            "billing_thresholds": None,
            "cancel_at": self.cancel_at,
            "cancel_at_period_end": self.cancel_at_period_end,
            "canceled_at": self.canceled_at,
            "cancellation_details": {
                "comment": self.cancellation_comment,
                "feedback": self.cancellation_feedback,
                "feedback_option": None,
                "reason": self.cancellation_reason,
            },
            "collection_method": "charge_automatically",
            "created": self.created,
            "currency": self.currency,
            "customer": self.customer,
            "customer_account": None,
            "days_until_due": None,
            "default_payment_method": self.default_payment_method,
            "default_source": None,
            "default_tax_rates": [],
            "description": self.description,
            "discounts": [],
            "ended_at": self.ended_at,
            "invoice_settings": {
                "account_tax_ids": None,
                "custom_fields": None,
                "description": None,
                "footer": None,
                "issuer": {"account": None, "type": "self"},
            },
            "items": self.items_dict(),
            "latest_invoice": self.latest_invoice,
            "livemode": False,
            "managed_payments": None,
            "metadata": dict(self.metadata),
            "next_pending_invoice_item_invoice": None,
            "on_behalf_of": None,
            "pause_collection": None,
            "payment_settings": {
                "payment_method_options": None,
                "payment_method_types": None,
                "save_default_payment_method": "off",
            },
            "pending_invoice_item_interval": None,
            "pending_setup_intent": None,
            "pending_update": None,
            "presentment_details": None,
            "schedule": None,
            "start_date": self.start_date,
            "status": self.status,
            "status_details": None,
            "test_clock": self.test_clock,
            "transfer_data": None,
            "trial_end": self.trial_end,
            "trial_settings": {"end_behavior": {"missing_payment_method": "create_invoice"}},
            "trial_start": self.trial_start,
        }
