"""``POST /v1/billing_portal/sessions`` and the customer's actions in the portal (control API).

Stripe's portal is a hosted page the fake does not serve; the session is validated and returned with
its ``url`` and ``flow``, and the control routes play what the customer does there: cancel (at period
end by default, or ``cancel_at`` only, which is what the portal does on some configurations), renew a
scheduled cancellation, or replace the card and pay what is open. Events from these actions have
``request.id = null``, as customer actions do.
"""

from __future__ import annotations

from typing import Any

from stripe_fake import ids
from stripe_fake.billing.customers import CustomerService
from stripe_fake.billing.invoices import InvoiceService
from stripe_fake.billing.objects import PortalSession, Subscription
from stripe_fake.billing.state import BillingState
from stripe_fake.billing.subscriptions import SubscriptionService
from stripe_fake.context import ApiContext
from stripe_fake.errors import StripeError, invalid_request, missing_param, resource_missing
from stripe_fake.events import AUTOMATIC
from stripe_fake.params import opt_dict, opt_enum, opt_str, reject_unknown

SESSION_PARAMS = frozenset(
    {
        "after_expiration",
        "configuration",
        "customer",
        "customer_account",
        "expand",
        "flow_data",
        "locale",
        "on_behalf_of",
        "return_url",
    }
)
FLOW_TYPES = [
    "payment_method_update",
    "subscription_cancel",
    "subscription_pause",
    "subscription_update",
    "subscription_update_confirm",
]
FLOW_PARAMS = frozenset({"after_completion", *FLOW_TYPES, "type"})
AFTER_COMPLETION = ["hosted_confirmation", "portal_homepage", "redirect"]
DEFAULT_CONFIGURATION = "bpc_1FakeDefaultPortalConfig"


class PortalService:
    """Portal sessions and the customer's portal actions."""

    def __init__(
        self,
        state: BillingState,
        customers: CustomerService,
        subscriptions: SubscriptionService,
        invoices: InvoiceService,
    ) -> None:
        self._state = state
        self._customers = customers
        self._subscriptions = subscriptions
        self._invoices = invoices

    def create(self, ctx: ApiContext) -> dict[str, Any]:
        """``POST /v1/billing_portal/sessions``."""
        params = ctx.params
        reject_unknown(params, SESSION_PARAMS)
        customer_id = opt_str(params, "customer")
        if customer_id is None:
            raise missing_param("customer")
        customer = self._customers.get(customer_id, "customer", status=400)
        return_url = opt_str(params, "return_url")
        if return_url is not None and not return_url.startswith(("https://", "http://")):
            raise invalid_request("Not a valid URL: an explicit scheme (such as https) must be provided.", "return_url")
        flow = self._flow(opt_dict(params, "flow_data"), customer.id)
        session = PortalSession(
            id=ids.new_id("bps_1", 23),
            customer=customer.id,
            created=ctx.now_int,
            url=f"https://billing.stripe.com/p/session/test_{ids.random_token(40)}",
            configuration=opt_str(params, "configuration") or DEFAULT_CONFIGURATION,
            return_url=return_url,
            flow=flow,
            locale=opt_str(params, "locale"),
            on_behalf_of=opt_str(params, "on_behalf_of"),
        )
        self._state.store.portal_sessions[session.id] = session
        return session.to_dict()

    # --- what the customer does in the portal (control API) ---------------------------------------

    def cancel(
        self,
        session_id: str,
        *,
        subscription: str | None,
        at_period_end: bool,
        use_cancel_at: bool,
        feedback: str | None,
        comment: str | None,
    ) -> Subscription:
        """The customer cancels (at period end by default)."""
        session = self.session(session_id)
        sub = self._subscription(session, subscription)
        at = self._state.now(sub.test_clock)
        if at_period_end:
            self._subscriptions.schedule_cancel(
                sub, at=at, request=AUTOMATIC, use_cancel_at=use_cancel_at, feedback=feedback, comment=comment
            )
        else:
            sub.cancellation_feedback, sub.cancellation_comment = feedback, comment
            self._subscriptions.cancel_now(sub, at=at, request=AUTOMATIC, invoice_now=False, prorate=False)
        return sub

    def renew(self, session_id: str, *, subscription: str | None) -> Subscription:
        """The customer takes back a scheduled cancellation."""
        session = self.session(session_id)
        sub = self._subscription(session, subscription)
        if sub.cancel_at is None and not sub.cancel_at_period_end:
            raise invalid_request(f"Subscription {sub.id} is not scheduled to cancel.", "subscription")
        self._subscriptions.undo_cancel(sub, at=self._state.now(sub.test_clock), request=AUTOMATIC)
        return sub

    def update_payment_method(self, session_id: str, *, payment_method: str, pay_open_invoices: bool) -> dict[str, Any]:
        """The customer enters a new card; optionally what is open is paid with it right away."""
        session = self.session(session_id)
        customer = self._customers.get(session.customer, "customer")
        at = self._state.now(customer.test_clock)
        pm = self._customers.use_payment_method(customer, payment_method, at=at, request=AUTOMATIC)
        paid: list[dict[str, Any]] = []
        failed: list[dict[str, Any]] = []
        if pay_open_invoices:
            for invoice in list(self._state.store.invoices.values()):
                if invoice.customer != customer.id or invoice.status not in ("open", "uncollectible"):
                    continue
                if invoice.amount_remaining <= 0:
                    continue
                try:
                    self._invoices.collect(invoice, at=at, request=AUTOMATIC, payment_method=pm)
                    paid.append(invoice.to_dict())
                except StripeError:
                    failed.append(invoice.to_dict())
        return {"customer": customer.to_dict(), "payment_method": pm.to_dict(), "paid": paid, "failed": failed}

    def session(self, session_id: str) -> PortalSession:
        """A portal session, or ``No such billing_portal.session``."""
        session = self._state.store.portal_sessions.get(session_id)
        if session is None:
            raise resource_missing("billing_portal.session", session_id, "session")
        return session

    # --- internals --------------------------------------------------------------------------------

    def _subscription(self, session: PortalSession, subscription: str | None) -> Subscription:
        """The subscription an action is about: given, the flow's, or the customer's only live one."""
        store = self._state.store
        if subscription is None and session.flow is not None:
            for key in (
                "subscription_cancel",
                "subscription_update",
                "subscription_update_confirm",
                "subscription_pause",
            ):
                section = session.flow.get(key)
                if isinstance(section, dict) and section.get("subscription"):
                    subscription = str(section["subscription"])
        if subscription is None:
            live = [s for s in store.subscriptions_of(session.customer) if s.live]
            if len(live) != 1:
                raise invalid_request(
                    f"Customer {session.customer} has {len(live)} live subscriptions; name the one to act on.",
                    "subscription",
                )
            return live[0]
        sub = store.subscriptions.get(subscription)
        if sub is None or sub.customer != session.customer:
            raise resource_missing("subscription", subscription, "subscription", status=400)
        if not sub.live:
            raise invalid_request(f"Subscription {sub.id} is {sub.status}.", "subscription")
        return sub

    def _flow(self, data: dict[str, Any] | None, customer_id: str) -> dict[str, Any] | None:
        if data is None:
            return None
        reject_unknown(data, FLOW_PARAMS, "flow_data")
        kind = opt_enum(data, "type", FLOW_TYPES, "flow_data[type]")
        if kind is None:
            raise missing_param("flow_data[type]")
        flow: dict[str, Any] = {
            "after_completion": self._after_completion(
                opt_dict(data, "after_completion", "flow_data[after_completion]")
            ),
            "customer_update": None,
            "subscription_cancel": None,
            "subscription_pause": None,
            "subscription_update": None,
            "subscription_update_confirm": None,
            "type": kind,
        }
        if kind == "payment_method_update":
            return flow
        section = opt_dict(data, kind, f"flow_data[{kind}]") or {}
        sub_id = opt_str(section, "subscription", f"flow_data[{kind}][subscription]")
        if sub_id is None:
            raise missing_param(f"flow_data[{kind}][subscription]")
        sub = self._state.store.subscriptions.get(sub_id)
        if sub is None or sub.customer != customer_id:
            raise resource_missing("subscription", sub_id, f"flow_data[{kind}][subscription]", status=400)
        if not sub.live:
            raise invalid_request(
                f"The subscription {sub_id} is {sub.status} and cannot be used in a portal flow.",
                f"flow_data[{kind}][subscription]",
            )
        if kind == "subscription_cancel":
            retention = opt_dict(section, "retention", f"flow_data[{kind}][retention]")
            flow[kind] = {"retention": retention, "subscription": sub_id}
        elif kind == "subscription_update_confirm":
            items = section.get("items") or []
            if not isinstance(items, list) or len(items) != 1:
                raise invalid_request("Exactly one item must be given.", f"flow_data[{kind}][items]")
            flow[kind] = {"discounts": [], "items": items, "subscription": sub_id}
        else:
            flow[kind] = {"subscription": sub_id}
        return flow

    def _after_completion(self, data: dict[str, Any] | None) -> dict[str, Any]:
        if data is None:
            return {"hosted_confirmation": None, "redirect": None, "type": "portal_homepage"}
        kind = opt_enum(data, "type", AFTER_COMPLETION, "flow_data[after_completion][type]") or "portal_homepage"
        redirect = opt_dict(data, "redirect", "flow_data[after_completion][redirect]")
        if kind == "redirect" and (redirect is None or not opt_str(redirect, "return_url")):
            raise missing_param("flow_data[after_completion][redirect][return_url]")
        hosted = opt_dict(data, "hosted_confirmation", "flow_data[after_completion][hosted_confirmation]")
        return {
            "hosted_confirmation": (
                {"custom_message": opt_str(hosted or {}, "custom_message")} if kind == "hosted_confirmation" else None
            ),
            "redirect": {"return_url": opt_str(redirect or {}, "return_url")} if kind == "redirect" else None,
            "type": kind,
        }
