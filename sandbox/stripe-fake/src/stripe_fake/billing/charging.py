"""Charging a customer's card for an invoice: PaymentIntent, Charge and InvoicePayment.

An invoice gets one PaymentIntent on its first attempt and keeps it across retries; every attempt
adds a Charge (``latest_charge`` moves). Which card is charged follows Stripe's priority: the
subscription's ``default_payment_method``, then the customer's
``invoice_settings.default_payment_method``; a card's magic token decides the outcome.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from stripe_fake import ids
from stripe_fake.billing.cards import decline_error
from stripe_fake.billing.objects import Invoice, InvoicePayment, PaymentMethod
from stripe_fake.billing.state import BillingState
from stripe_fake.models import Charge, PaymentIntent

PI_DESCRIPTIONS = {
    "subscription_create": "Subscription creation",
    "subscription_cycle": "Subscription update",
    "subscription_update": "Subscription update",
}


@dataclass(frozen=True, slots=True)
class ChargeResult:
    """What one attempt did."""

    succeeded: bool
    intent: PaymentIntent | None
    charge: Charge | None
    payment_method: PaymentMethod | None
    error: dict[str, Any] | None


def payment_method_for(state: BillingState, invoice: Invoice) -> PaymentMethod | None:
    """The card Stripe would charge for ``invoice`` (subscription default, then customer default)."""
    store = state.store
    sub = store.subscriptions.get(invoice.subscription or "")
    customer = store.customers.get(invoice.customer)
    for pm_id in (sub.default_payment_method if sub else None, customer.default_payment_method if customer else None):
        if pm_id and pm_id in store.payment_methods:
            return store.payment_methods[pm_id]
    return None


def charge_invoice(state: BillingState, invoice: Invoice, pm: PaymentMethod | None, at: int) -> ChargeResult:
    """Try to collect ``invoice.amount_remaining`` from ``pm``."""
    if pm is None:
        error: dict[str, Any] = {
            "code": "invoice_payment_intent_requires_action",
            "message": "The customer has no default payment method to charge.",
            "type": "invalid_request_error",
        }
        return ChargeResult(False, None, None, None, error)
    intent = _intent_for(state, invoice, pm, at)
    amount = invoice.amount_remaining
    behavior = pm.behavior
    charge = Charge(
        id=ids.new_id("ch_3", 23),
        payment_intent=intent.id,
        amount=amount,
        currency=invoice.currency,
        status="succeeded" if behavior.charges_succeed else "failed",
        created=at,
        metadata={},
        billing_email=pm.billing_email,
        billing_name=pm.billing_name,
        customer=invoice.customer,
        payment_method=pm.id,
        description=intent.description,
        failure_code=None if behavior.charges_succeed else "card_declined",
        failure_message=None if behavior.charges_succeed else "Your card was declined.",
        decline_code=behavior.charge_decline_code,
    )
    state.payments.charges[charge.id] = charge
    intent.latest_charge = charge.id
    intent.payment_method = pm.id
    intent.amount = amount
    if behavior.charges_succeed:
        intent.status = "succeeded"
        intent.last_payment_error = None
        return ChargeResult(True, intent, charge, pm, None)
    decline: dict[str, Any] = decline_error(behavior.charge_decline_code or "generic_decline", charge=charge.id)
    decline["payment_method"] = pm.to_dict()
    intent.status = "requires_payment_method"
    intent.last_payment_error = decline
    return ChargeResult(False, intent, charge, pm, decline)


def _intent_for(state: BillingState, invoice: Invoice, pm: PaymentMethod, at: int) -> PaymentIntent:
    existing = state.payments.payment_intents.get(invoice.payment_intent or "")
    if existing is not None:
        return existing
    intent_id = ids.new_id("pi_3", 23)
    intent = PaymentIntent(
        id=intent_id,
        amount=invoice.amount_remaining,
        currency=invoice.currency,
        status="requires_payment_method",
        created=at,
        metadata={},
        description=PI_DESCRIPTIONS.get(invoice.billing_reason, "Payment for Invoice"),
        client_secret=f"{intent_id}_secret_{ids.random_token(24)}",
        customer=invoice.customer,
        payment_method=pm.id,
    )
    state.payments.payment_intents[intent.id] = intent
    state.store.invoice_by_payment_intent[intent.id] = invoice.id
    invoice.payment_intent = intent.id
    payment = InvoicePayment(
        id=ids.new_id("inpay_1", 23),
        invoice=invoice.id,
        amount_requested=invoice.amount_remaining,
        currency=invoice.currency,
        payment_intent=intent.id,
        created=at,
    )
    state.store.invoice_payments[payment.id] = payment
    invoice.invoice_payment = payment.id
    return intent
