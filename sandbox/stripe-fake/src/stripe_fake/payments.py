"""PaymentIntents and refunds.

PaymentIntents exist only once a Checkout Session was confirmed (paid, delayed or declined via the
control API); they carry ``payment_intent_data.metadata`` from the session. Refunds are counted against
the PaymentIntent's charge: the default amount is what remains, refunding more is a 400, refunding a
fully refunded charge is ``charge_already_refunded``, and refunds succeed immediately (no pending state).
"""

from __future__ import annotations

from typing import Any, Protocol

from stripe_fake import ids
from stripe_fake.context import ApiContext
from stripe_fake.errors import invalid_request, missing_param, resource_missing
from stripe_fake.events import RequestInfo
from stripe_fake.listing import LIST_PARAMS, created_filter, paginate
from stripe_fake.models import Charge, PaymentIntent, Refund
from stripe_fake.params import metadata, opt_enum, opt_int, opt_str, reject_unknown, str_list
from stripe_fake.store import Store

REFUND_PARAMS = frozenset(
    {
        "amount",
        "charge",
        "currency",
        "customer",
        "expand",
        "instructions_email",
        "metadata",
        "origin",
        "payment_intent",
        "reason",
        "refund_application_fee",
        "reverse_transfer",
    }
)
REFUND_REASONS = ["duplicate", "fraudulent", "requested_by_customer"]
ZERO_DECIMAL = frozenset(
    {"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf"}
)


def format_amount(amount: int, currency: str) -> str:
    """``1500, "eur"`` -> ``"EUR 15.00"`` for error messages."""
    if currency.lower() in ZERO_DECIMAL:
        return f"{currency.upper()} {amount}"
    return f"{currency.upper()} {amount / 100:.2f}"


class RefundHooks(Protocol):
    """What billing adds to refunds: refusing disputed charges, and events for invoice charges."""

    def before_refund(self, charge: Charge) -> None:
        """Raise a Stripe error if ``charge`` cannot be refunded."""

    def after_refund(self, charge: Charge, refund: Refund, request: RequestInfo) -> None:
        """React to a refund that was just recorded."""


class PaymentService:
    """PaymentIntent retrieval and refunds."""

    def __init__(self, store: Store, hooks: RefundHooks | None = None) -> None:
        self._store = store
        self.hooks = hooks

    def retrieve_intent(self, ctx: ApiContext, intent_id: str) -> dict[str, Any]:
        """``GET /v1/payment_intents/{id}`` (``expand[]=latest_charge`` supported)."""
        reject_unknown(ctx.params, {"expand", "client_secret"})
        expand = str_list(ctx.params, "expand")
        for path in expand:
            if path != "latest_charge":
                raise invalid_request(f"This property cannot be expanded ({path}).", "expand")
        intent = self._store.payment_intents.get(intent_id)
        if intent is None:
            raise resource_missing("payment_intent", intent_id, "intent")
        obj = intent.to_dict()
        if expand:
            charge = self._store.charges.get(intent.latest_charge or "")
            obj["latest_charge"] = charge.to_dict() if charge is not None else None
        return obj

    def create_refund(self, ctx: ApiContext) -> dict[str, Any]:
        """``POST /v1/refunds``."""
        params = ctx.params
        reject_unknown(params, REFUND_PARAMS)
        intent = self._refund_target(params)
        charge = self._store.charges.get(intent.latest_charge or "")
        if intent.status != "succeeded" or charge is None or charge.status != "succeeded":
            raise invalid_request(
                f"This PaymentIntent ({intent.id}) does not have a successful charge to refund.",
                "payment_intent",
            )
        refund = self.refund(
            intent,
            charge,
            amount=opt_int(params, "amount"),
            reason=opt_enum(params, "reason", REFUND_REASONS),
            metadata=metadata(params),
            created=ctx.now_int,
        )
        if self.hooks is not None:
            self.hooks.after_refund(charge, refund, ctx.cause())
        return refund.to_dict()

    def refund(
        self,
        intent: PaymentIntent,
        charge: Charge,
        *,
        amount: int | None,
        reason: str | None,
        metadata: dict[str, str],
        created: int,
    ) -> Refund:
        """Refund (part of) a successful charge; raises Stripe's errors for what cannot be refunded."""
        remaining = charge.amount - charge.amount_refunded
        if remaining <= 0:
            raise invalid_request(f"Charge {charge.id} has already been refunded.", code="charge_already_refunded")
        if self.hooks is not None:
            self.hooks.before_refund(charge)
        if amount is not None and amount <= 0:
            raise invalid_request("Invalid positive integer", "amount")
        if amount is None:
            amount = remaining
        if amount > remaining:
            raise invalid_request(
                f"Refund amount ({format_amount(amount, charge.currency)}) is greater than unrefunded "
                f"amount on charge ({format_amount(remaining, charge.currency)})",
                "amount",
            )
        refund = Refund(
            id=ids.new_id("re_3", 23),
            amount=amount,
            currency=charge.currency,
            payment_intent=intent.id,
            charge=charge.id,
            status="succeeded",
            reason=reason,
            metadata=metadata,
            created=created,
            customer=charge.customer,
            payment_method=charge.payment_method,
        )
        charge.amount_refunded += amount
        self._store.refunds[refund.id] = refund
        return refund

    def retrieve_refund(self, ctx: ApiContext, refund_id: str) -> dict[str, Any]:
        """``GET /v1/refunds/{id}``."""
        reject_unknown(ctx.params, {"expand"})
        refund = self._store.refunds.get(refund_id)
        if refund is None:
            raise resource_missing("refund", refund_id, "refund")
        return refund.to_dict()

    def list_refunds(self, ctx: ApiContext) -> dict[str, Any]:
        """``GET /v1/refunds`` (newest first, filterable by ``payment_intent`` and ``charge``)."""
        params = ctx.params
        reject_unknown(params, LIST_PARAMS | {"charge", "payment_intent", "created"})
        payment_intent = opt_str(params, "payment_intent")
        charge = opt_str(params, "charge")
        in_range = created_filter(params)
        refunds = [
            r
            for r in reversed(self._store.refunds.values())
            if (payment_intent is None or r.payment_intent == payment_intent)
            and (charge is None or r.charge == charge)
            and in_range(r.created)
        ]
        return paginate(
            refunds,
            id_of=lambda r: r.id,
            render=lambda r: r.to_dict(),
            params=params,
            url="/v1/refunds",
            kind="refund",
        )

    def _refund_target(self, params: dict[str, Any]) -> PaymentIntent:
        intent_id = opt_str(params, "payment_intent")
        charge_id = opt_str(params, "charge")
        if intent_id is not None and charge_id is not None:
            raise invalid_request("You may only specify one of these parameters: charge, payment_intent.", "charge")
        if charge_id is not None:
            charge: Charge | None = self._store.charges.get(charge_id)
            if charge is None:
                raise resource_missing("charge", charge_id, "charge")
            intent_id = charge.payment_intent
        if intent_id is None:
            raise missing_param("payment_intent")
        intent = self._store.payment_intents.get(intent_id)
        if intent is None:
            raise resource_missing("payment_intent", intent_id, "payment_intent")
        return intent
