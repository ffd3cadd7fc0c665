"""Billing objects and their Stripe JSON shapes (every non-includable field, null when empty)."""

from stripe_fake.billing.objects.catalog import Price, Product, Recurring
from stripe_fake.billing.objects.clocks import PortalSession, TestClock
from stripe_fake.billing.objects.customers import CardBehavior, Customer, PaymentMethod
from stripe_fake.billing.objects.disputes import BalanceTransaction, Dispute
from stripe_fake.billing.objects.invoices import Invoice, InvoiceItem, InvoiceLine, InvoicePayment
from stripe_fake.billing.objects.subscriptions import Subscription, SubscriptionItem

__all__ = [
    "BalanceTransaction",
    "CardBehavior",
    "Customer",
    "Dispute",
    "Invoice",
    "InvoiceItem",
    "InvoiceLine",
    "InvoicePayment",
    "PaymentMethod",
    "PortalSession",
    "Price",
    "Product",
    "Recurring",
    "Subscription",
    "SubscriptionItem",
    "TestClock",
]
