"""``/v1/invoices`` and ``/v1/invoice_payments``: reading invoices, and paying one by hand.

``pay`` on a paid invoice is Stripe's 400 "Invoice is already paid" (there is no dedicated error code,
so clients must match on state). A declined card is a 402 ``card_error`` after the
``invoice.payment_failed`` event went out; a manual attempt never moves the retry schedule (see
``dunning``). A draft is finalized first; an ``uncollectible`` invoice can still be paid.
"""

from __future__ import annotations

from typing import Any

from stripe_fake.billing.common import expand_paths, opt_bool
from stripe_fake.billing.customers import CustomerService
from stripe_fake.billing.invoicing import Invoicing
from stripe_fake.billing.objects import Invoice
from stripe_fake.billing.state import BillingState
from stripe_fake.billing.subscriptions import payments_list
from stripe_fake.context import ApiContext
from stripe_fake.errors import StripeError, invalid_request, resource_missing
from stripe_fake.events import RequestInfo
from stripe_fake.listing import LIST_PARAMS, created_filter, paginate
from stripe_fake.params import opt_dict, opt_enum, opt_str, reject_unknown

INVOICE_EXPAND = frozenset({"customer", "payments", "test_clock"})
INVOICE_LIST = LIST_PARAMS | {
    "collection_method",
    "created",
    "customer",
    "customer_account",
    "due_date",
    "status",
    "subscription",
}
INVOICE_STATUSES = ["draft", "open", "paid", "uncollectible", "void"]
PAY_PARAMS = frozenset({"expand", "forgive", "mandate", "off_session", "paid_out_of_band", "payment_method", "source"})
PAYMENT_LIST = LIST_PARAMS | {"created", "invoice", "payment", "status"}


class InvoiceService:
    """Invoice and invoice-payment API."""

    def __init__(self, state: BillingState, invoicing: Invoicing, customers: CustomerService) -> None:
        self._state = state
        self._invoicing = invoicing
        self._customers = customers

    def retrieve(self, ctx: ApiContext, invoice_id: str) -> dict[str, Any]:
        """``GET /v1/invoices/{id}`` (``expand[]=payments``)."""
        expand = expand_paths(ctx.params, INVOICE_EXPAND)
        reject_unknown(ctx.params, {"expand"})
        return self.render(self.get(invoice_id), expand)

    def list_invoices(self, ctx: ApiContext) -> dict[str, Any]:
        """``GET /v1/invoices`` (``customer``, ``subscription``, ``status``; newest first)."""
        params = ctx.params
        reject_unknown(params, INVOICE_LIST)
        expand = expand_paths(params, INVOICE_EXPAND, in_list=True)
        customer = opt_str(params, "customer")
        subscription = opt_str(params, "subscription")
        status = opt_enum(params, "status", INVOICE_STATUSES)
        in_range = created_filter(params)
        invoices = [
            i
            for i in reversed(self._state.store.invoices.values())
            if (customer is None or i.customer == customer)
            and (subscription is None or i.subscription == subscription)
            and (status is None or i.status == status)
            and in_range(i.created)
        ]
        return paginate(
            invoices,
            id_of=lambda i: i.id,
            render=lambda i: self.render(i, expand),
            params=params,
            url="/v1/invoices",
            kind="invoice",
        )

    def lines(self, ctx: ApiContext, invoice_id: str) -> dict[str, Any]:
        """``GET /v1/invoices/{id}/lines``."""
        reject_unknown(ctx.params, LIST_PARAMS)
        invoice = self.get(invoice_id)
        return paginate(
            invoice.lines,
            id_of=lambda line: line.id,
            render=lambda line: line.to_dict(),
            params=ctx.params,
            url=f"/v1/invoices/{invoice.id}/lines",
            kind="line_item",
        )

    def pay(self, ctx: ApiContext, invoice_id: str) -> dict[str, Any]:
        """``POST /v1/invoices/{id}/pay``."""
        params = ctx.params
        reject_unknown(params, PAY_PARAMS)
        expand = expand_paths(params, INVOICE_EXPAND)
        invoice = self.get(invoice_id)
        request = ctx.cause()
        at = self._state.now(invoice.test_clock)
        if invoice.status == "paid":
            raise invalid_request("Invoice is already paid")
        if invoice.status == "void":
            raise invalid_request("This invoice can no longer be paid because it has been voided.")
        pm = None
        pm_ref = opt_str(params, "payment_method")
        if pm_ref is not None:
            pm = self._customers.payment_method_from(pm_ref, "payment_method", at)
            if pm.customer is None:
                self._customers.attach(pm, self._state.customer(invoice.customer))
            elif pm.customer != invoice.customer:
                raise invalid_request(
                    f"The payment method {pm.id} does not belong to the invoice's customer.", "payment_method"
                )
        if invoice.status == "draft":
            self._invoicing.finalize(invoice, at=at, request=request)
            if invoice.status == "paid":
                return self.render(invoice, expand)
        if opt_bool(params, "paid_out_of_band") is True or opt_bool(params, "forgive") is True:
            self._invoicing.mark_paid_out_of_band(invoice, at=at, request=request)
            return self.render(invoice, expand)
        self.collect(invoice, at=at, request=request, payment_method=pm)
        return self.render(invoice, expand)

    def collect(self, invoice: Invoice, *, at: int, request: RequestInfo, payment_method: Any = None) -> None:
        """A manual attempt; a decline is the SDK's ``CardError`` (402) after the events."""
        result = self._invoicing.attempt(
            invoice, at=at, request=request, automatic=False, payment_method=payment_method
        )
        if result.succeeded:
            return
        error = result.error or {}
        if error.get("type") != "card_error":
            raise invalid_request(
                "This customer has no attached payment source or default payment method. Please consider adding "
                "a default payment method.",
            )
        extra: dict[str, Any] = {k: error[k] for k in ("decline_code", "charge") if k in error}
        if result.intent is not None:
            extra["payment_intent"] = result.intent.to_dict()
        raise StripeError(402, str(error.get("message")), type="card_error", code="card_declined", extra=extra)

    def list_payments(self, ctx: ApiContext) -> dict[str, Any]:
        """``GET /v1/invoice_payments`` (``invoice``, ``payment[payment_intent]``, ``status``)."""
        params = ctx.params
        reject_unknown(params, PAYMENT_LIST)
        invoice = opt_str(params, "invoice")
        payment = opt_dict(params, "payment") or {}
        intent = opt_str(payment, "payment_intent", "payment[payment_intent]")
        status = opt_enum(params, "status", ["canceled", "open", "paid"])
        in_range = created_filter(params)
        payments = [
            p
            for p in reversed(self._state.store.invoice_payments.values())
            if (invoice is None or p.invoice == invoice)
            and (intent is None or p.payment_intent == intent)
            and (status is None or p.status == status)
            and in_range(p.created)
        ]
        return paginate(
            payments,
            id_of=lambda p: p.id,
            render=lambda p: p.to_dict(),
            params=params,
            url="/v1/invoice_payments",
            kind="invoice_payment",
        )

    def retrieve_payment(self, ctx: ApiContext, payment_id: str) -> dict[str, Any]:
        """``GET /v1/invoice_payments/{id}``."""
        reject_unknown(ctx.params, {"expand"})
        payment = self._state.store.invoice_payments.get(payment_id)
        if payment is None:
            raise resource_missing("invoice_payment", payment_id, "invoice_payment")
        return payment.to_dict()

    def get(self, invoice_id: str) -> Invoice:
        """An invoice, or ``No such invoice``."""
        invoice = self._state.store.invoices.get(invoice_id)
        if invoice is None:
            raise resource_missing("invoice", invoice_id, "invoice")
        return invoice

    def render(self, invoice: Invoice, expand: list[str]) -> dict[str, Any]:
        """An invoice with the requested expansions."""
        obj = invoice.to_dict()
        store = self._state.store
        if "payments" in expand:
            obj["payments"] = payments_list(self._state, invoice)
        if "customer" in expand and invoice.customer in store.customers:
            obj["customer"] = store.customers[invoice.customer].to_dict()
        if "test_clock" in expand and invoice.test_clock in store.test_clocks:
            obj["test_clock"] = store.test_clocks[invoice.test_clock].to_dict()
        return obj
