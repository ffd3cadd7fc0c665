"""Stripe's magic test payment-method tokens and what each one does.

Passing a token such as ``pm_card_visa`` where a payment method is expected makes Stripe create a new
``pm_…`` from that test card. ``pm_card_chargeCustomerFail`` attaches fine but every charge on it is
declined, which is how renewals are made to fail; the plain decline cards cannot even be attached.
The dispute cards succeed and are then disputed by the "cardholder".
"""

from __future__ import annotations

from stripe_fake.billing.objects import CardBehavior

TOKENS: dict[str, CardBehavior] = {
    "pm_card_visa": CardBehavior("visa", "4242"),
    "pm_card_visa_debit": CardBehavior("visa", "5556", funding="debit"),
    "pm_card_mastercard": CardBehavior("mastercard", "4444"),
    "pm_card_amex": CardBehavior("amex", "8431"),
    "pm_card_chargeCustomerFail": CardBehavior("visa", "0341", charge_decline_code="generic_decline"),
    "pm_card_visa_chargeDeclined": CardBehavior(
        "visa", "0002", attachable=False, attach_decline_code="generic_decline"
    ),
    "pm_card_chargeDeclined": CardBehavior("visa", "0002", attachable=False, attach_decline_code="generic_decline"),
    "pm_card_chargeDeclinedInsufficientFunds": CardBehavior(
        "visa", "9995", attachable=False, attach_decline_code="insufficient_funds"
    ),
    "pm_card_createDispute": CardBehavior("visa", "0259", dispute_reason="fraudulent"),
    "pm_card_createDisputeProductNotReceived": CardBehavior("visa", "2685", dispute_reason="product_not_received"),
    "pm_card_createDisputeInquiry": CardBehavior("visa", "1976", dispute_reason="fraudulent", dispute_inquiry=True),
}

DECLINE_MESSAGES = {
    "generic_decline": "Your card was declined.",
    "insufficient_funds": "Your card has insufficient funds.",
}


def behavior_of(token: str) -> CardBehavior | None:
    """The behaviour of a magic token, or ``None`` if ``token`` is not one."""
    return TOKENS.get(token)


def decline_error(decline_code: str, *, charge: str | None = None) -> dict[str, object]:
    """The ``card_error`` hash Stripe reports for a declined card."""
    error: dict[str, object] = {
        "code": "card_declined",
        "decline_code": decline_code,
        "doc_url": "https://stripe.com/docs/error-codes/card-declined",
        "message": DECLINE_MESSAGES.get(decline_code, "Your card was declined."),
        "type": "card_error",
    }
    if charge is not None:
        error["charge"] = charge
    return error
