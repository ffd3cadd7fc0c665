"""Products and Prices: the catalogue subscriptions and invoices are priced from.

Prices are immutable in Stripe except for ``active``, ``nickname``, ``lookup_key`` and ``metadata``; the
amount, currency and recurrence never change, so subscription items and invoice lines hold a reference
to the Price and render it as it is now without risk of showing a different amount.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from stripe_fake.models import JSON


@dataclass(slots=True)
class Product:
    """``product``: what is sold."""

    id: str
    name: str
    created: int
    active: bool = True
    description: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    default_price: str | None = None
    type: str = "service"
    unit_label: str | None = None
    statement_descriptor: str | None = None
    url: str | None = None
    images: list[str] = field(default_factory=list)
    updated: int = 0

    def to_dict(self) -> JSON:
        """Public ``product`` object."""
        return {
            "id": self.id,
            "object": "product",
            "active": self.active,
            "created": self.created,
            "default_price": self.default_price,
            "description": self.description,
            "images": list(self.images),
            "livemode": False,
            "marketing_features": [],
            "metadata": dict(self.metadata),
            "name": self.name,
            "package_dimensions": None,
            "shippable": None,
            "statement_descriptor": self.statement_descriptor,
            "tax_code": None,
            "tax_details": None,
            "type": self.type,
            "unit_label": self.unit_label,
            "updated": self.updated or self.created,
            "url": self.url,
        }


@dataclass(frozen=True, slots=True)
class Recurring:
    """How often a recurring price bills."""

    interval: str
    interval_count: int = 1

    def to_dict(self) -> JSON:
        """``price.recurring``."""
        return {
            "interval": self.interval,
            "interval_count": self.interval_count,
            "meter": None,
            "trial_period_days": None,
            "usage_type": "licensed",
        }


@dataclass(slots=True)
class Price:
    """``price``: an amount per unit, once or every interval."""

    id: str
    product: str
    currency: str
    unit_amount: int
    unit_amount_decimal: str
    created: int
    recurring: Recurring | None = None
    active: bool = True
    lookup_key: str | None = None
    nickname: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    tax_behavior: str = "unspecified"

    @property
    def type(self) -> str:
        """``recurring`` or ``one_time``."""
        return "recurring" if self.recurring is not None else "one_time"

    def to_dict(self) -> JSON:
        """Public ``price`` object."""
        return {
            "id": self.id,
            "object": "price",
            "active": self.active,
            "billing_scheme": "per_unit",
            "created": self.created,
            "currency": self.currency,
            "custom_unit_amount": None,
            "livemode": False,
            "lookup_key": self.lookup_key,
            "metadata": dict(self.metadata),
            "nickname": self.nickname,
            "product": self.product,
            "recurring": self.recurring.to_dict() if self.recurring is not None else None,
            "tax_behavior": self.tax_behavior,
            "tiers_mode": None,
            "transform_quantity": None,
            "type": self.type,
            "unit_amount": self.unit_amount,
            "unit_amount_decimal": self.unit_amount_decimal,
        }

    def to_plan(self) -> JSON:
        """The legacy ``plan`` view that subscription items still carry next to ``price``."""
        recurring = self.recurring or Recurring("month")
        return {
            "id": self.id,
            "object": "plan",
            "active": self.active,
            "amount": self.unit_amount,
            "amount_decimal": self.unit_amount_decimal,
            "billing_scheme": "per_unit",
            "created": self.created,
            "currency": self.currency,
            "interval": recurring.interval,
            "interval_count": recurring.interval_count,
            "livemode": False,
            "metadata": dict(self.metadata),
            "meter": None,
            "nickname": self.nickname,
            "product": self.product,
            "tiers_mode": None,
            "transform_usage": None,
            "trial_period_days": None,
            "usage_type": "licensed",
        }
