"""Prorations: what a mid-period change of price or quantity is worth.

For the time left in the period, the customer is credited the unused time of the old price and charged
the remaining time of the new one, each rounded to the minor unit separately, as two invoice items
(``Unused time on …`` / ``Remaining time on …``). With ``create_prorations`` they wait for the next
invoice; with ``always_invoice`` they are invoiced at once.
"""

from __future__ import annotations

from stripe_fake import ids
from stripe_fake.billing.objects import InvoiceItem, Price, Subscription
from stripe_fake.billing.periods import describe_date

PRORATION_BEHAVIORS = ["always_invoice", "create_prorations", "none"]


def remaining_fraction(sub: Subscription, at: int) -> float:
    """Share of the current period still ahead at ``at`` (0 outside the period)."""
    start, end = sub.current_period_start, sub.current_period_end
    if end <= start or at >= end:
        return 0.0
    return (end - max(at, start)) / (end - start)


def proration_item(
    sub: Subscription,
    *,
    price: Price,
    quantity: int,
    product_name: str,
    subscription_item: str,
    at: int,
    credit: bool,
    test_clock: str | None,
) -> InvoiceItem | None:
    """One proration invoice item (not stored yet), or ``None`` when nothing is left of the period."""
    fraction = remaining_fraction(sub, at)
    if fraction <= 0:
        return None
    amount = round(price.unit_amount * quantity * fraction)
    what = product_name if quantity == 1 else f"{quantity} × {product_name}"
    when = describe_date(at)
    return InvoiceItem(
        id=ids.new_id("ii_1", 23),
        customer=sub.customer,
        amount=-amount if credit else amount,
        currency=price.currency,
        description=f"Unused time on {what} after {when}" if credit else f"Remaining time on {what} after {when}",
        period_start=at,
        period_end=sub.current_period_end,
        price=price,
        quantity=quantity,
        created=at,
        subscription=sub.id,
        subscription_item=subscription_item,
        proration=True,
        test_clock=test_clock,
    )
