"""Refunds and charges of invoice payments, and the Dashboard refund (scenario G).

``POST /v1/refunds`` already works for any charge (``payments.PaymentService``); billing adds two rules
through :class:`BillingRefundHooks`: a disputed charge cannot be refunded (``charge_disputed``), and a
refund of an invoice charge emits ``charge.refunded`` then ``refund.created``, as a Dashboard refund
does for any charge. (Refunds of Checkout ``mode=payment`` charges through the API stay silent, as the
payment flow's contract has always had them.) The invoice stays ``paid`` and the subscription is not
touched.
"""

from __future__ import annotations

from typing import Any

from stripe_fake.billing.state import BillingState
from stripe_fake.context import ApiContext
from stripe_fake.errors import invalid_request, resource_missing
from stripe_fake.events import AUTOMATIC, RequestInfo
from stripe_fake.listing import LIST_PARAMS, created_filter, paginate
from stripe_fake.models import Charge, Refund
from stripe_fake.params import opt_str, reject_unknown
from stripe_fake.payments import PaymentService


class BillingRefundHooks:
    """The billing rules :class:`~stripe_fake.payments.PaymentService` applies to every refund."""

    def __init__(self, state: BillingState) -> None:
        self._state = state

    def before_refund(self, charge: Charge) -> None:
        """Stripe refuses to refund a charge that has been disputed."""
        if charge.disputed:
            raise invalid_request(
                f"Charge {charge.id} has been charged back; cannot issue a refund.", code="charge_disputed"
            )

    def after_refund(self, charge: Charge, refund: Refund, request: RequestInfo) -> None:
        """Invoice charges announce their refunds (``charge.refunded`` → ``refund.created``)."""
        if charge.payment_intent in self._state.store.invoice_by_payment_intent:
            self.announce(charge, refund, request)

    def announce(self, charge: Charge, refund: Refund, request: RequestInfo) -> None:
        """Scenario G's events."""
        at = self._state.now_for_customer(charge.customer) if charge.customer else self._state.now(None)
        self._state.emit("charge.refunded", charge.to_dict(), at=at, request=request)
        self._state.emit("refund.created", refund.to_dict(), at=at, request=request)


class ChargeService:
    """``GET /v1/charges[/{id}]`` and the Dashboard refund."""

    def __init__(self, state: BillingState, payments: PaymentService, hooks: BillingRefundHooks) -> None:
        self._state = state
        self._payments = payments
        self._hooks = hooks

    def retrieve(self, ctx: ApiContext, charge_id: str) -> dict[str, Any]:
        """``GET /v1/charges/{id}``."""
        reject_unknown(ctx.params, {"expand"})
        return self.get(charge_id).to_dict()

    def list_charges(self, ctx: ApiContext) -> dict[str, Any]:
        """``GET /v1/charges`` (``customer``, ``payment_intent``)."""
        params = ctx.params
        reject_unknown(params, LIST_PARAMS | {"created", "customer", "payment_intent", "transfer_group"})
        customer = opt_str(params, "customer")
        intent = opt_str(params, "payment_intent")
        in_range = created_filter(params)
        charges = [
            c
            for c in reversed(self._state.payments.charges.values())
            if (customer is None or c.customer == customer)
            and (intent is None or c.payment_intent == intent)
            and in_range(c.created)
        ]
        return paginate(
            charges, id_of=lambda c: c.id, render=lambda c: c.to_dict(), params=params, url="/v1/charges", kind="charge"
        )

    def dashboard_refund(self, charge_id: str, amount: int | None, reason: str | None) -> Refund:
        """A refund issued from the Dashboard: always ``charge.refunded`` then ``refund.created``."""
        charge = self.get(charge_id)
        intent = self._state.payments.payment_intents.get(charge.payment_intent)
        if intent is None or charge.status != "succeeded":
            raise invalid_request(f"Charge {charge.id} did not succeed; there is nothing to refund.", "charge")
        at = self._state.now_for_customer(charge.customer) if charge.customer else self._state.now(None)
        refund = self._payments.refund(
            intent, charge, amount=amount, reason=reason or "requested_by_customer", metadata={}, created=at
        )
        self._hooks.announce(charge, refund, AUTOMATIC)
        return refund

    def get(self, charge_id: str) -> Charge:
        """A charge, or ``No such charge``."""
        charge = self._state.payments.charges.get(charge_id)
        if charge is None:
            raise resource_missing("charge", charge_id, "charge")
        return charge
