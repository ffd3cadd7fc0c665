"""``/v1/customers`` and ``/v1/payment_methods``: who pays, and with which card.

A customer created with ``test_clock`` lives on that clock from then on (its subscriptions and
invoices too). Payment methods come from Stripe's magic test tokens: attaching ``pm_card_visa``
creates a new ``pm_…`` bound to the customer; the plain decline cards cannot be attached (402).
"""

from __future__ import annotations

from typing import Any

from stripe_fake import ids
from stripe_fake.billing import lifecycle
from stripe_fake.billing.cards import behavior_of, decline_error
from stripe_fake.billing.common import expand_paths, updated_metadata
from stripe_fake.billing.objects import Customer, PaymentMethod
from stripe_fake.billing.state import BillingState, diff
from stripe_fake.context import ApiContext
from stripe_fake.errors import StripeError, invalid_request, missing_param, resource_missing
from stripe_fake.events import AUTOMATIC, RequestInfo
from stripe_fake.listing import LIST_PARAMS, created_filter, paginate
from stripe_fake.params import metadata, opt_dict, opt_int, opt_str, reject_unknown

CUSTOMER_CREATE = frozenset(
    {
        "address",
        "balance",
        "business_name",
        "cash_balance",
        "description",
        "email",
        "expand",
        "individual_name",
        "invoice_prefix",
        "invoice_settings",
        "metadata",
        "name",
        "next_invoice_sequence",
        "payment_method",
        "phone",
        "preferred_locales",
        "shipping",
        "source",
        "tax",
        "tax_exempt",
        "tax_id_data",
        "test_clock",
        "validate",
    }
)
CUSTOMER_UPDATE = (CUSTOMER_CREATE - {"payment_method", "tax_id_data", "test_clock"}) | {"default_source"}
CUSTOMER_LIST = LIST_PARAMS | {"created", "email", "test_clock"}
INVOICE_SETTINGS = frozenset({"custom_fields", "default_payment_method", "footer", "rendering_options"})
CUSTOMER_EXPAND = frozenset({"invoice_settings.default_payment_method", "test_clock"})
PM_LIST = LIST_PARAMS | {"customer", "type", "allow_redisplay"}


class CustomerService:
    """Customers and their payment methods."""

    def __init__(self, state: BillingState) -> None:
        self._state = state

    # --- customers --------------------------------------------------------------------------------

    def create(self, ctx: ApiContext) -> dict[str, Any]:
        """``POST /v1/customers`` (``test_clock`` attaches the customer to a clock for good)."""
        params = ctx.params
        reject_unknown(params, CUSTOMER_CREATE)
        expand = expand_paths(params, CUSTOMER_EXPAND)
        clock_id = opt_str(params, "test_clock")
        if clock_id is not None and clock_id not in self._state.store.test_clocks:
            raise resource_missing("test_helpers.test_clock", clock_id, "test_clock", status=400)
        at = self._state.now(clock_id)
        token = opt_str(params, "payment_method")
        settings = opt_dict(params, "invoice_settings") or {}
        reject_unknown(settings, INVOICE_SETTINGS, "invoice_settings")
        customer = self.new_customer(
            email=opt_str(params, "email"),
            name=opt_str(params, "name"),
            at=at,
            test_clock=clock_id,
            metadata=metadata(params),
        )
        customer.description = opt_str(params, "description")
        customer.phone = opt_str(params, "phone")
        customer.balance = opt_int(params, "balance") or 0
        customer.invoice_prefix = opt_str(params, "invoice_prefix") or customer.invoice_prefix
        pm: PaymentMethod | None = None
        if token is not None:
            pm = self.payment_method_from(token, "payment_method", at)
        default_pm = opt_str(settings, "default_payment_method", "invoice_settings[default_payment_method]")
        if default_pm is not None and (pm is None or default_pm not in (pm.id, token)):
            raise self._not_attached(default_pm, "invoice_settings[default_payment_method]")
        self._state.store.customers[customer.id] = customer
        self._state.emit("customer.created", customer.to_dict(), at=at, request=ctx.cause())
        if pm is not None:
            self.attach(pm, customer)
            if default_pm is not None:
                customer.default_payment_method = pm.id
        return self.render(customer, expand)

    def retrieve(self, ctx: ApiContext, customer_id: str) -> dict[str, Any]:
        """``GET /v1/customers/{id}``."""
        expand = expand_paths(ctx.params, CUSTOMER_EXPAND)
        reject_unknown(ctx.params, {"expand"})
        return self.render(self.get(customer_id, "customer"), expand)

    def update(self, ctx: ApiContext, customer_id: str) -> dict[str, Any]:
        """``POST /v1/customers/{id}`` (``invoice_settings[default_payment_method]`` must be attached)."""
        params = ctx.params
        reject_unknown(params, CUSTOMER_UPDATE)
        expand = expand_paths(params, CUSTOMER_EXPAND)
        customer = self.get(customer_id, "customer")
        settings = opt_dict(params, "invoice_settings") or {}
        reject_unknown(settings, INVOICE_SETTINGS, "invoice_settings")
        new_default: str | None = customer.default_payment_method
        if "default_payment_method" in settings:
            new_default = opt_str(settings, "default_payment_method", "invoice_settings[default_payment_method]")
            if new_default is not None:
                pm = self._state.store.payment_methods.get(new_default)
                if pm is None or pm.customer != customer.id:
                    raise self._not_attached(new_default, "invoice_settings[default_payment_method]")
        at = self._state.now(customer.test_clock)
        self.change(
            customer,
            at=at,
            request=ctx.cause(),
            email=opt_str(params, "email") if "email" in params else customer.email,
            name=opt_str(params, "name") if "name" in params else customer.name,
            description=opt_str(params, "description") if "description" in params else customer.description,
            phone=opt_str(params, "phone") if "phone" in params else customer.phone,
            metadata=updated_metadata(customer.metadata, params) if "metadata" in params else customer.metadata,
            default_payment_method=new_default,
            balance=opt_int(params, "balance") if "balance" in params else customer.balance,
        )
        return self.render(customer, expand)

    def delete(self, ctx: ApiContext, customer_id: str) -> dict[str, Any]:
        """``DELETE /v1/customers/{id}``: its live subscriptions are canceled at once."""
        reject_unknown(ctx.params, set())
        customer = self.get(customer_id, "customer")
        at = self._state.now(customer.test_clock)
        for sub in self._state.store.subscriptions_of(customer.id):
            if sub.live or sub.status == "incomplete":
                lifecycle.end(self._state, sub, at=at, reason="cancellation_requested", request=ctx.cause())
        del self._state.store.customers[customer.id]
        self._state.emit("customer.deleted", customer.to_dict(), at=at, request=ctx.cause())
        return {"id": customer.id, "object": "customer", "deleted": True}

    def list_customers(self, ctx: ApiContext) -> dict[str, Any]:
        """``GET /v1/customers`` (``email``, ``test_clock``, ``created``)."""
        params = ctx.params
        reject_unknown(params, CUSTOMER_LIST)
        expand = expand_paths(params, CUSTOMER_EXPAND, in_list=True)
        email = opt_str(params, "email")
        clock = opt_str(params, "test_clock")
        in_range = created_filter(params)
        customers = [
            c
            for c in reversed(self._state.store.customers.values())
            if (email is None or c.email == email) and (clock is None or c.test_clock == clock) and in_range(c.created)
        ]
        return paginate(
            customers,
            id_of=lambda c: c.id,
            render=lambda c: self.render(c, expand),
            params=params,
            url="/v1/customers",
            kind="customer",
        )

    # --- payment methods --------------------------------------------------------------------------

    def attach_api(self, ctx: ApiContext, pm_ref: str) -> dict[str, Any]:
        """``POST /v1/payment_methods/{pm}/attach`` (``pm`` may be a magic ``pm_card_*`` token)."""
        params = ctx.params
        reject_unknown(params, {"customer", "customer_account", "expand"})
        customer_id = opt_str(params, "customer")
        if customer_id is None:
            raise missing_param("customer")
        customer = self.get(customer_id, "customer", status=400)
        at = self._state.now(customer.test_clock)
        pm = self.payment_method_from(pm_ref, "payment_method", at, path=True)
        if pm.customer is not None and pm.customer != customer.id:
            raise invalid_request(
                "The payment method you provided has already been attached to a customer.", "payment_method"
            )
        self.attach(pm, customer)
        return pm.to_dict()

    def detach_api(self, ctx: ApiContext, pm_id: str) -> dict[str, Any]:
        """``POST /v1/payment_methods/{pm}/detach``."""
        reject_unknown(ctx.params, {"expand"})
        pm = self.get_payment_method(pm_id)
        if pm.customer is None:
            raise invalid_request("The payment method you provided is not attached to a customer.", "payment_method")
        customer = self._state.store.customers.get(pm.customer)
        pm.customer = None
        if customer is not None and customer.default_payment_method == pm.id:
            customer.default_payment_method = None
        return pm.to_dict()

    def retrieve_payment_method(self, ctx: ApiContext, pm_id: str) -> dict[str, Any]:
        """``GET /v1/payment_methods/{pm}``."""
        reject_unknown(ctx.params, {"expand"})
        return self.get_payment_method(pm_id).to_dict()

    def list_payment_methods(self, ctx: ApiContext, customer_id: str | None = None) -> dict[str, Any]:
        """``GET /v1/payment_methods?customer=`` and ``GET /v1/customers/{id}/payment_methods``."""
        params = ctx.params
        reject_unknown(params, PM_LIST)
        customer = customer_id or opt_str(params, "customer")
        if customer is not None:
            self.get(customer, "customer")
        kind = opt_str(params, "type")
        methods = [
            pm
            for pm in reversed(self._state.store.payment_methods.values())
            if (customer is None or pm.customer == customer) and (kind is None or kind == "card")
        ]
        url = f"/v1/customers/{customer_id}/payment_methods" if customer_id else "/v1/payment_methods"
        return paginate(
            methods, id_of=lambda p: p.id, render=lambda p: p.to_dict(), params=params, url=url, kind="payment_method"
        )

    # --- shared -----------------------------------------------------------------------------------

    def new_customer(
        self,
        *,
        email: str | None,
        name: str | None,
        at: int,
        test_clock: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> Customer:
        """A customer object (not stored yet)."""
        return Customer(
            id=ids.new_id("cus_", 14),
            created=at,
            invoice_prefix=ids.random_token(8).upper(),
            email=email,
            name=name,
            metadata=metadata or {},
            test_clock=test_clock,
        )

    def get(self, customer_id: str, param: str, *, status: int = 404) -> Customer:
        """A customer, or ``No such customer``."""
        customer = self._state.store.customers.get(customer_id)
        if customer is None:
            raise resource_missing("customer", customer_id, param, status=status)
        return customer

    def get_payment_method(self, pm_id: str) -> PaymentMethod:
        """A payment method, or ``No such PaymentMethod``."""
        pm = self._state.store.payment_methods.get(pm_id)
        if pm is None:
            raise resource_missing("PaymentMethod", pm_id, "payment_method")
        return pm

    def payment_method_from(self, ref: str, param: str, at: int, *, path: bool = False) -> PaymentMethod:
        """An existing ``pm_…``, or a new one made from a magic token (402 for undeclinable-to-attach cards)."""
        existing = self._state.store.payment_methods.get(ref)
        if existing is not None:
            return existing
        behavior = behavior_of(ref)
        if behavior is None:
            raise resource_missing("PaymentMethod", ref, param, status=404 if path else 400)
        if not behavior.attachable:
            error = decline_error(behavior.attach_decline_code or "generic_decline")
            raise StripeError(
                402,
                str(error["message"]),
                type="card_error",
                code="card_declined",
                param=param,
                extra={"decline_code": error["decline_code"]},
            )
        pm = PaymentMethod(id=ids.new_id("pm_1", 23), created=at, behavior=behavior, token=ref)
        self._state.store.payment_methods[pm.id] = pm
        return pm

    def attach(self, pm: PaymentMethod, customer: Customer) -> None:
        """Bind a payment method to a customer (billing details follow the customer)."""
        pm.customer = customer.id
        pm.billing_email = pm.billing_email or customer.email
        pm.billing_name = pm.billing_name or customer.name

    def change(
        self,
        customer: Customer,
        *,
        at: int,
        request: RequestInfo = AUTOMATIC,
        email: str | None,
        name: str | None,
        description: str | None,
        phone: str | None,
        metadata: dict[str, str],
        default_payment_method: str | None,
        balance: int | None,
    ) -> None:
        """Apply changes and emit ``customer.updated`` with ``previous_attributes`` if anything changed."""
        before = customer.to_dict()
        customer.email, customer.name, customer.description, customer.phone = email, name, description, phone
        customer.metadata = metadata
        customer.default_payment_method = default_payment_method
        customer.balance = balance or 0
        after = customer.to_dict()
        previous = diff(before, after)
        if previous:
            self._state.emit("customer.updated", after, at=at, request=request, previous=previous)

    def use_payment_method(self, customer: Customer, ref: str, *, at: int, request: RequestInfo) -> PaymentMethod:
        """Attach ``ref`` and make it what the customer's next charges use (control API and portal).

        Subscriptions that carry their own ``default_payment_method`` switch to it too, so the next
        charge really does use the new card whatever the priority order.
        """
        pm = self.payment_method_from(ref, "payment_method", at)
        if pm.customer is not None and pm.customer != customer.id:
            raise invalid_request(
                "The payment method you provided has already been attached to a customer.", "payment_method"
            )
        self.attach(pm, customer)
        self.change(
            customer,
            at=at,
            request=request,
            email=customer.email,
            name=customer.name,
            description=customer.description,
            phone=customer.phone,
            metadata=customer.metadata,
            default_payment_method=pm.id,
            balance=customer.balance,
        )
        for sub in self._state.store.subscriptions_of(customer.id):
            if sub.default_payment_method is not None and sub.default_payment_method != pm.id:
                before = sub.to_dict()
                sub.default_payment_method = pm.id
                lifecycle.emit_updated(self._state, sub, before, at=at, request=request)
        return pm

    def render(self, customer: Customer, expand: list[str]) -> dict[str, Any]:
        """A customer with the requested expansions."""
        obj = customer.to_dict()
        store = self._state.store
        if "invoice_settings.default_payment_method" in expand and customer.default_payment_method:
            pm = store.payment_methods.get(customer.default_payment_method)
            obj["invoice_settings"]["default_payment_method"] = pm.to_dict() if pm else None
        if "test_clock" in expand and customer.test_clock:
            clock = store.test_clocks.get(customer.test_clock)
            obj["test_clock"] = clock.to_dict() if clock else None
        return obj

    def _not_attached(self, pm_id: str, param: str) -> StripeError:
        return invalid_request(
            f"The customer does not have a payment method with the ID {pm_id}. The payment method must be "
            "attached to the customer.",
            param,
            code="resource_missing",
        )
