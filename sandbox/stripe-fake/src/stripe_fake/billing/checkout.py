"""Checkout ``mode=subscription``: what Checkout needs from billing, and completing such a session.

Completing (the control API playing the browser) produces scenario A in this order:
``customer.created`` (only when Checkout creates the customer) → ``customer.subscription.created``
(``incomplete``) → ``invoice.created`` → ``invoice.finalized`` → ``invoice.paid`` →
``invoice.payment_succeeded`` → ``invoice_payment.paid`` → ``customer.subscription.updated``
(``active``, previous ``incomplete``) → ``checkout.session.completed`` (emitted by the Checkout service).
With a trial (scenario A′) the subscription starts ``trialing`` and the $0 invoice is paid at
finalization, without ``invoice_payment.paid`` or ``customer.subscription.updated``.

A card that cannot be charged (a decline card, or ``pm_card_chargeCustomerFail``) is refused on the
Checkout page: the session stays open and nothing is created or emitted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from stripe_fake.billing.cards import behavior_of
from stripe_fake.billing.catalog import CatalogService
from stripe_fake.billing.customers import CustomerService
from stripe_fake.billing.objects import Customer, Invoice, Price, Product, Subscription
from stripe_fake.billing.periods import DAY
from stripe_fake.billing.state import BillingState
from stripe_fake.billing.subscriptions import ItemSpec, SubscriptionService
from stripe_fake.errors import resource_missing
from stripe_fake.models import CheckoutSession

DEFAULT_PAYMENT_METHOD = "pm_card_visa"


@dataclass(frozen=True, slots=True)
class Completion:
    """What completing a subscription-mode session created."""

    customer: Customer
    subscription_id: str
    invoice_id: str
    amount_paid: int


class CheckoutBilling:
    """The billing side of Checkout (implements ``checkout_params.CheckoutCatalog``)."""

    def __init__(
        self,
        state: BillingState,
        catalog: CatalogService,
        customers: CustomerService,
        subscriptions: SubscriptionService,
    ) -> None:
        self._state = state
        self._catalog = catalog
        self._customers = customers
        self._subscriptions = subscriptions

    # --- what session creation needs --------------------------------------------------------------

    def price(self, price_id: str, param: str) -> Price:
        """A catalogue price (400 ``No such price`` otherwise)."""
        return self._catalog.price(price_id, param, status=400)

    def product(self, product_id: str, param: str) -> Product:
        """A catalogue product."""
        return self._catalog.product(product_id, param, status=400)

    def inline_price(self, data: dict[str, Any], prefix: str, at: int) -> tuple[Price, Product | None]:
        """``price_data`` as a new price (stored only once the session is created)."""
        return self._catalog.inline_price(data, prefix, at)

    def store_inline(self, price: Price, product: Product | None) -> None:
        """Keep an inline price."""
        self._catalog.store_inline(price, product)

    def has_customer(self, customer_id: str) -> bool:
        """Whether ``customer`` exists."""
        return customer_id in self._state.store.customers

    def customer_email(self, customer_id: str) -> str | None:
        """A customer's email (it prefills the session's ``customer_details``)."""
        customer = self._state.store.customers.get(customer_id)
        return customer.email if customer is not None else None

    # --- completion -------------------------------------------------------------------------------

    def can_pay(self, payment_method: str | None) -> bool:
        """Whether the card would be accepted on the Checkout page (400 for an unknown token)."""
        ref = payment_method or DEFAULT_PAYMENT_METHOD
        existing = self._state.store.payment_methods.get(ref)
        behavior = existing.behavior if existing is not None else behavior_of(ref)
        if behavior is None:
            raise resource_missing("PaymentMethod", ref, "payment_method", status=400)
        return behavior.attachable and behavior.charges_succeed

    def complete(
        self, session: CheckoutSession, *, payment_method: str | None, email: str | None, name: str | None
    ) -> Completion:
        """Create the customer (if needed), subscription and first invoice, and charge it."""
        store = self._state.store
        customer = store.customers.get(session.customer_id or "")
        if customer is None:
            customer = self._customers.new_customer(email=email, name=name, at=self._state.now(None))
            store.customers[customer.id] = customer
            self._state.emit("customer.created", customer.to_dict(), at=customer.created)
        at = self._state.now(customer.test_clock)
        pm = self._customers.payment_method_from(payment_method or DEFAULT_PAYMENT_METHOD, "payment_method", at)
        self._customers.attach(pm, customer)
        customer.default_payment_method = pm.id
        recurring = [
            ItemSpec(item.price_obj, item.quantity)
            for item in session.line_items
            if item.price_obj is not None and item.price_obj.recurring is not None
        ]
        one_time = [
            ItemSpec(item.price_obj, item.quantity)
            for item in session.line_items
            if item.price_obj is not None and item.price_obj.recurring is None
        ]
        trial_end = session.trial_end
        if trial_end is None and session.trial_period_days is not None:
            trial_end = at + session.trial_period_days * DAY
        sub = self._subscriptions.create(
            customer,
            recurring,
            metadata=session.subscription_metadata,
            trial_end=trial_end,
            description=session.subscription_description,
            at=at,
        )
        invoice = self._subscriptions.first_invoice(sub, one_time, at=at)
        return Completion(customer, sub.id, invoice.id, invoice.amount_paid)

    def expand(self, kind: str, object_id: str | None) -> dict[str, Any] | None:
        """A session's ``customer``, ``subscription`` or ``invoice`` expanded."""
        if object_id is None:
            return None
        store = self._state.store
        found: Customer | Subscription | Invoice | None
        if kind == "customer":
            found = store.customers.get(object_id)
        elif kind == "subscription":
            found = store.subscriptions.get(object_id)
        else:
            found = store.invoices.get(object_id)
        return found.to_dict() if found is not None else None
