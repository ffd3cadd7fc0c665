"""Where the billing objects live (in memory, insertion order = creation order).

PaymentIntents, charges and refunds stay in the payment flow's :class:`~stripe_fake.store.Store`, so
``GET /v1/payment_intents/{id}`` and ``POST /v1/refunds`` work for invoice payments exactly as for
Checkout payments.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from stripe_fake.billing.objects import (
    Customer,
    Dispute,
    Invoice,
    InvoiceItem,
    InvoicePayment,
    PaymentMethod,
    PortalSession,
    Price,
    Product,
    Subscription,
    TestClock,
)


@dataclass(slots=True)
class BillingStore:
    """Every billing object by id."""

    products: dict[str, Product] = field(default_factory=dict)
    prices: dict[str, Price] = field(default_factory=dict)
    customers: dict[str, Customer] = field(default_factory=dict)
    payment_methods: dict[str, PaymentMethod] = field(default_factory=dict)
    subscriptions: dict[str, Subscription] = field(default_factory=dict)
    invoices: dict[str, Invoice] = field(default_factory=dict)
    invoice_items: dict[str, InvoiceItem] = field(default_factory=dict)
    invoice_payments: dict[str, InvoicePayment] = field(default_factory=dict)
    disputes: dict[str, Dispute] = field(default_factory=dict)
    test_clocks: dict[str, TestClock] = field(default_factory=dict)
    portal_sessions: dict[str, PortalSession] = field(default_factory=dict)
    invoice_by_payment_intent: dict[str, str] = field(default_factory=dict)
    dispute_by_charge: dict[str, str] = field(default_factory=dict)

    def subscriptions_of(self, customer_id: str) -> list[Subscription]:
        """A customer's subscriptions, oldest first."""
        return [s for s in self.subscriptions.values() if s.customer == customer_id]

    def invoices_of_subscription(self, subscription_id: str) -> list[Invoice]:
        """A subscription's invoices, oldest first."""
        return [i for i in self.invoices.values() if i.subscription == subscription_id]

    def on_clock(self, clock_id: str | None) -> list[Subscription]:
        """Subscriptions whose time is ``clock_id`` (``None``: the fake's own clock)."""
        return [s for s in self.subscriptions.values() if s.test_clock == clock_id]

    def invoices_on_clock(self, clock_id: str | None) -> list[Invoice]:
        """Invoices whose time is ``clock_id``."""
        return [i for i in self.invoices.values() if i.test_clock == clock_id]

    def clear(self) -> None:
        """Forget everything (``DELETE /_fake/data``)."""
        for value in (
            self.products,
            self.prices,
            self.customers,
            self.payment_methods,
            self.subscriptions,
            self.invoices,
            self.invoice_items,
            self.invoice_payments,
            self.disputes,
            self.test_clocks,
            self.portal_sessions,
            self.invoice_by_payment_intent,
            self.dispute_by_charge,
        ):
            value.clear()
