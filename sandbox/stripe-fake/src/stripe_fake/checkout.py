"""Checkout Sessions: creation, retrieval with expansions, expiry, and simulated customer payments.

Behaviour follows Stripe's for the embedded flow: a session is created ``open``/``unpaid`` with no
PaymentIntent (deferred creation); paying completes it and creates the PaymentIntent; a delayed method
completes it ``unpaid`` until the async result; expiry (by ``expire`` or by time, checked lazily on
access, by a periodic sweep and when the fake clock moves) happens once and emits
``checkout.session.expired`` once. A declined card leaves the session open and emits nothing.

In ``mode=subscription`` (billing wired in) paying creates the customer (unless one was given), the
subscription and its first invoice instead of a PaymentIntent; see ``billing.checkout``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from stripe_fake import ids
from stripe_fake.checkout_params import CLIENT_SECRET_UI_MODES, parse_create
from stripe_fake.clock import FakeClock
from stripe_fake.context import ApiContext
from stripe_fake.errors import StripeError, invalid_request, resource_missing
from stripe_fake.events import AUTOMATIC, Emitter, RequestInfo
from stripe_fake.forms import Params
from stripe_fake.listing import LIST_PARAMS, created_filter, paginate
from stripe_fake.models import Charge, CheckoutSession, LineItem, PaymentIntent
from stripe_fake.params import opt_enum, opt_str, reject_unknown, str_list
from stripe_fake.store import Store

if TYPE_CHECKING:
    from stripe_fake.billing.checkout import CheckoutBilling

EXPANDABLE_NULLS = frozenset({"customer", "invoice", "subscription", "setup_intent", "payment_link"})
EXPANDABLE = frozenset({"line_items", "payment_intent", "payment_intent.latest_charge"}) | EXPANDABLE_NULLS
EMBEDDED_LIST_LIMIT = 10
DEFAULT_CUSTOMER_NAME = "Jürgen Müller"
"""Non-ASCII on purpose: Stripe sends raw UTF-8, so ``json.dumps`` (which escapes it by default) of a
parsed ``completed`` payload no longer matches the signed bytes, as with real customer data."""
LIST_SESSION_PARAMS = LIST_PARAMS | {
    "created",
    "customer",
    "customer_account",
    "customer_details",
    "payment_intent",
    "payment_link",
    "status",
    "subscription",
}
DECLINE_ERROR: dict[str, Any] = {
    "code": "card_declined",
    "decline_code": "generic_decline",
    "message": "Your card was declined.",
    "type": "card_error",
}
ASYNC_FAILURE_ERROR: dict[str, Any] = {
    "code": "payment_method_provider_decline",
    "message": "The payment was declined by the payment method provider.",
    "type": "invalid_request_error",
}


class CheckoutService:
    """Checkout Session operations over the shared store."""

    def __init__(self, store: Store, clock: FakeClock, emit: Emitter, billing: CheckoutBilling | None = None) -> None:
        self._store = store
        self._clock = clock
        self._emit = emit
        self._billing = billing

    # --- API -------------------------------------------------------------------------------------

    def create(self, ctx: ApiContext) -> dict[str, Any]:
        """``POST /v1/checkout/sessions``."""
        spec = parse_create(ctx.params, ctx.now_int, self._billing)
        self._check_expand(spec.expand)
        session_id = ids.checkout_session_id()
        items = [
            LineItem(
                id=ids.new_id("li_1", 23),
                price_id=item.price.id if item.price is not None else ids.new_id("price_1", 23),
                product_id=item.price.product if item.price is not None else ids.new_id("prod_", 14),
                description=item.description,
                currency=item.currency,
                unit_amount=item.unit_amount,
                unit_amount_decimal=item.unit_amount_decimal,
                quantity=item.quantity,
                amount=item.amount,
                metadata=item.metadata,
                created=ctx.now_int,
                price_obj=item.price,
            )
            for item in spec.line_items
        ]
        if self._billing is not None:
            for spec_item in spec.line_items:
                if spec_item.new_price and spec_item.price is not None:
                    self._billing.store_inline(spec_item.price, spec_item.new_product)
        sub_data = spec.subscription_data
        trial = sub_data is not None and (sub_data.trial_period_days is not None or sub_data.trial_end is not None)
        total = sum(
            0 if trial and item.price_obj is not None and item.price_obj.recurring is not None else item.amount
            for item in items
        )
        session = CheckoutSession(
            id=session_id,
            mode=spec.mode,
            ui_mode=spec.ui_mode,
            status="open",
            payment_status="unpaid",
            client_secret=ids.client_secret(session_id) if spec.ui_mode in CLIENT_SECRET_UI_MODES else None,
            currency=spec.currency,
            amount_subtotal=total,
            amount_total=total,
            created=ctx.now_int,
            expires_at=spec.expires_at,
            metadata=spec.metadata,
            client_reference_id=spec.client_reference_id,
            customer_email=spec.customer_email,
            return_url=spec.return_url,
            redirect_on_completion=spec.redirect_on_completion,
            success_url=spec.success_url,
            cancel_url=spec.cancel_url,
            hosted_url=(
                f"https://checkout.stripe.com/c/pay/{session_id}#fake" if spec.ui_mode == "hosted_page" else None
            ),
            allowed_payment_method_types=spec.allowed_payment_method_types,
            locale=spec.locale,
            submit_type=spec.submit_type,
            billing_address_collection=spec.billing_address_collection,
            customer_creation=spec.customer_creation,
            line_items=items,
            payment_intent_metadata=spec.payment_intent_metadata,
            payment_intent_description=spec.payment_intent_description,
            customer_id=spec.customer,
            subscription_metadata=dict(sub_data.metadata) if sub_data is not None else {},
            trial_period_days=sub_data.trial_period_days if sub_data is not None else None,
            trial_end=sub_data.trial_end if sub_data is not None else None,
            subscription_description=sub_data.description if sub_data is not None else None,
        )
        self._store.add_session(session)
        return self.render(session, spec.expand)

    def retrieve(self, ctx: ApiContext, session_id: str) -> dict[str, Any]:
        """``GET /v1/checkout/sessions/{id}`` (expires the session first if its time has come)."""
        reject_unknown(ctx.params, {"expand"})
        expand = str_list(ctx.params, "expand")
        self._check_expand(expand)
        session = self.get(session_id)
        return self.render(session, expand)

    def expire(self, ctx: ApiContext, session_id: str) -> dict[str, Any]:
        """``POST /v1/checkout/sessions/{id}/expire``: only open sessions can be expired."""
        reject_unknown(ctx.params, {"expand"})
        expand = str_list(ctx.params, "expand")
        self._check_expand(expand)
        session = self.get(session_id)
        if session.status != "open":
            raise invalid_request(
                'Only Checkout Sessions with a status in ["open"] can be expired. This Checkout Session '
                f"has a status of `{session.status}`."
            )
        self._expire(session, ctx.cause())
        return self.render(session, expand)

    def list_sessions(self, ctx: ApiContext) -> dict[str, Any]:
        """``GET /v1/checkout/sessions`` (newest first, filterable by status and PaymentIntent)."""
        params = ctx.params
        reject_unknown(params, LIST_SESSION_PARAMS)
        expand = [e.removeprefix("data.") for e in str_list(params, "expand")]
        self._check_expand(expand)
        self.expire_due()
        status = opt_enum(params, "status", ["complete", "expired", "open"])
        payment_intent = opt_str(params, "payment_intent")
        customer = opt_str(params, "customer")
        subscription = opt_str(params, "subscription")
        in_range = created_filter(params)
        sessions = [
            s
            for s in reversed(self._store.sessions.values())
            if (status is None or s.status == status)
            and (payment_intent is None or s.payment_intent_id == payment_intent)
            and (customer is None or s.customer_id == customer)
            and (subscription is None or s.subscription_id == subscription)
            and in_range(s.created)
        ]
        return paginate(
            sessions,
            id_of=lambda s: s.id,
            render=lambda s: self.render(s, expand),
            params=params,
            url="/v1/checkout/sessions",
            kind="checkout.session",
        )

    def list_line_items(self, ctx: ApiContext, session_id: str) -> dict[str, Any]:
        """``GET /v1/checkout/sessions/{id}/line_items``."""
        reject_unknown(ctx.params, LIST_PARAMS)
        session = self.get(session_id)
        return paginate(
            session.line_items,
            id_of=lambda item: item.id,
            render=lambda item: item.to_dict(),
            params=ctx.params,
            url=f"/v1/checkout/sessions/{session.id}/line_items",
            kind="item",
        )

    # --- control API (what the customer does on the Checkout page) -------------------------------

    def pay(
        self,
        session_id: str,
        outcome: str,
        email: str | None,
        name: str | None,
        payment_method: str | None = None,
    ) -> CheckoutSession:
        """Simulate the customer submitting the embedded form: paid, delayed method, or declined card."""
        session = self.get(session_id)
        if session.status != "open":
            raise invalid_request(
                f"Checkout Session {session.id} cannot be paid: its status is `{session.status}` "
                "(only `open` sessions accept a payment).",
                "session",
            )
        if session.mode == "subscription":
            return self._pay_subscription(session, outcome, email, name, payment_method)
        now = self._clock.now_int()
        intent = self._payment_intent_for(session, now)
        charge = Charge(
            id=ids.new_id("ch_3", 23),
            payment_intent=intent.id,
            amount=intent.amount,
            currency=intent.currency,
            status={"paid": "succeeded", "delayed": "pending", "declined": "failed"}[outcome],
            created=now,
            metadata=dict(intent.metadata),
            billing_email=email or session.customer_email,
            billing_name=name,
        )
        self._store.charges[charge.id] = charge
        intent.latest_charge = charge.id
        if outcome == "declined":
            intent.status = "requires_payment_method"
            intent.last_payment_error = dict(DECLINE_ERROR)
            return session
        intent.last_payment_error = None
        intent.status = "succeeded" if outcome == "paid" else "processing"
        session.status = "complete"
        session.payment_status = "paid" if outcome == "paid" else "unpaid"
        session.completed_at = now
        session.customer_details = _customer_details(email or session.customer_email, name)
        self._emit_session("checkout.session.completed", session, AUTOMATIC)
        return session

    def _pay_subscription(
        self, session: CheckoutSession, outcome: str, email: str | None, name: str | None, payment_method: str | None
    ) -> CheckoutSession:
        """Scenario A (or A′ with a trial); a card that cannot be charged leaves the session open."""
        billing = self._billing
        assert billing is not None
        if outcome == "delayed":
            raise invalid_request(
                "Subscription-mode sessions are paid by card in the stand-in: use the outcome `paid` (with a "
                "`payment_method`) or `declined`.",
                "outcome",
            )
        if outcome == "declined" or not billing.can_pay(payment_method):
            return session
        details_email = email or session.customer_email
        if session.customer_id is not None:
            details_email = details_email or billing.customer_email(session.customer_id)
        details = _customer_details(details_email, name)
        done = billing.complete(session, payment_method=payment_method, email=details["email"], name=details["name"])
        session.customer_id = done.customer.id
        session.subscription_id = done.subscription_id
        session.invoice_id = done.invoice_id
        session.status = "complete"
        session.payment_status = "paid" if done.amount_paid > 0 else "no_payment_required"
        session.completed_at = self._clock.now_int()
        session.customer_details = details
        self._emit_session("checkout.session.completed", session, AUTOMATIC)
        return session

    def settle_async(self, session_id: str, result: str) -> CheckoutSession:
        """Simulate the delayed payment method finally succeeding or failing."""
        session = self.get(session_id)
        intent = self._store.payment_intents.get(session.payment_intent_id or "")
        if (
            session.status != "complete"
            or session.payment_status != "unpaid"
            or intent is None
            or intent.status != "processing"
        ):
            raise invalid_request(
                f"Checkout Session {session.id} has no delayed payment waiting for a result (status "
                f"`{session.status}`, payment_status `{session.payment_status}`, payment_intent status "
                f"`{intent.status if intent else None}`); pay it with outcome `delayed` first.",
                "session",
            )
        charge = self._store.charges.get(intent.latest_charge or "")
        if result == "succeeded":
            intent.status = "succeeded"
            session.payment_status = "paid"
            if charge is not None:
                charge.status = "succeeded"
            self._emit_session("checkout.session.async_payment_succeeded", session, AUTOMATIC)
        else:
            intent.status = "requires_payment_method"
            intent.last_payment_error = dict(ASYNC_FAILURE_ERROR)
            if charge is not None:
                charge.status = "failed"
            self._emit_session("checkout.session.async_payment_failed", session, AUTOMATIC)
        return session

    # --- shared ---------------------------------------------------------------------------------

    def get(self, session_id: str) -> CheckoutSession:
        """A session by id (expired first if due), or Stripe's 404."""
        session = self._store.sessions.get(session_id)
        if session is None:
            raise resource_missing("checkout.session", session_id, "session")
        self._expire_if_due(session)
        return session

    def expire_due(self) -> int:
        """Expire every open session past ``expires_at`` (the automatic, time-based expiry)."""
        due = self._store.due_for_expiry(self._clock.now())
        for session in due:
            self._expire(session, AUTOMATIC)
        return len(due)

    def render(self, session: CheckoutSession, expand: list[str]) -> dict[str, Any]:
        """The session JSON with the requested expansions."""
        obj = session.to_dict()
        wanted = set(expand)
        if "line_items" in wanted:
            obj["line_items"] = {
                "object": "list",
                "data": [item.to_dict() for item in session.line_items[:EMBEDDED_LIST_LIMIT]],
                "has_more": len(session.line_items) > EMBEDDED_LIST_LIMIT,
                "url": f"/v1/checkout/sessions/{session.id}/line_items",
            }
        if wanted & {"payment_intent", "payment_intent.latest_charge"}:
            intent = self._store.payment_intents.get(session.payment_intent_id or "")
            intent_obj = intent.to_dict() if intent is not None else None
            if intent_obj is not None and "payment_intent.latest_charge" in wanted and intent is not None:
                charge = self._store.charges.get(intent.latest_charge or "")
                intent_obj["latest_charge"] = charge.to_dict() if charge is not None else None
            obj["payment_intent"] = intent_obj
        if self._billing is not None:
            for kind, object_id in (
                ("customer", session.customer_id),
                ("subscription", session.subscription_id),
                ("invoice", session.invoice_id),
            ):
                if kind in wanted and object_id is not None:
                    obj[kind] = self._billing.expand(kind, object_id)
        return obj

    def _check_expand(self, expand: list[str]) -> None:
        for path in expand:
            if path not in EXPANDABLE:
                raise invalid_request(f"This property cannot be expanded ({path}).", "expand")

    def _expire_if_due(self, session: CheckoutSession) -> None:
        if session.status == "open" and self._clock.now() >= session.expires_at:
            self._expire(session, AUTOMATIC)

    def _expire(self, session: CheckoutSession, cause: RequestInfo) -> None:
        session.status = "expired"
        self._emit_session("checkout.session.expired", session, cause)

    def _emit_session(self, event_type: str, session: CheckoutSession, cause: RequestInfo) -> None:
        self._emit(event_type, session.to_dict(), request=cause, order_id=session.order_id())

    def _payment_intent_for(self, session: CheckoutSession, now: int) -> PaymentIntent:
        """The session's PaymentIntent, created at the first payment attempt (deferred creation)."""
        existing = self._store.payment_intents.get(session.payment_intent_id or "")
        if existing is not None:
            return existing
        intent_id = ids.new_id("pi_3", 23)
        intent = PaymentIntent(
            id=intent_id,
            amount=session.amount_total,
            currency=session.currency,
            status="requires_payment_method",
            created=now,
            metadata=dict(session.payment_intent_metadata),
            description=session.payment_intent_description,
            client_secret=f"{intent_id}_secret_{ids.random_token(24)}",
        )
        self._store.link_payment_intent(session, intent)
        return intent


def _customer_details(email: str | None, name: str | None) -> dict[str, Any]:
    return {
        "address": {
            "city": None,
            "country": "DE",
            "line1": None,
            "line2": None,
            "postal_code": None,
            "state": None,
        },
        "business_name": None,
        "email": email or "customer@example.test",
        "individual_name": None,
        "name": name or DEFAULT_CUSTOMER_NAME,
        "phone": None,
        "tax_exempt": "none",
        "tax_ids": [],
    }


def session_matches(session: CheckoutSession, params: Params) -> bool:
    """Control-API filter: ``order_id`` (``metadata.serverOrderId`` or client_reference_id), status."""
    order_id = params.get("order_id") or params.get("metadata.serverOrderId") or params.get("metadata[serverOrderId]")
    status = params.get("status")
    if order_id and session.metadata.get("serverOrderId") != order_id and session.client_reference_id != order_id:
        return False
    return not (status and session.status != status)


__all__ = ["CheckoutService", "StripeError", "session_matches"]
