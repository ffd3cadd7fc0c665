"""``/v1/subscriptions``: retrieve, list, update (cancellation flags, items with prorations), cancel.

Subscriptions are created by Checkout (see ``billing.checkout``). Rules reproduced from Stripe:

- A canceled subscription can only change ``metadata`` and ``cancellation_details``; anything else is a
  400, and canceling it again is a 404 ``No such subscription`` ("akin to being deleted already").
- ``cancel_at_period_end=true`` sets ``cancel_at`` to the period end and ``canceled_at`` to now; no
  invoice is made. ``cancel_at`` accepts a timestamp, ``""`` (unset), ``min_period_end`` or
  ``max_period_end``.
- Item changes prorate by default (``create_prorations``: the items wait for the next invoice);
  ``always_invoice`` invoices them now (``billing_reason=subscription_update``), charged at once;
  ``none`` just switches. ``payment_behavior=error_if_incomplete`` refuses (402, nothing changes) when
  that charge would fail.
- Immediate cancel (``DELETE``) emits ``customer.subscription.deleted``; with ``prorate`` the unused
  time becomes a credit, and with ``invoice_now`` pending items are invoiced right away.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from stripe_fake import ids
from stripe_fake.billing import lifecycle
from stripe_fake.billing.catalog import CatalogService
from stripe_fake.billing.charging import payment_method_for
from stripe_fake.billing.common import expand_paths, opt_bool, updated_metadata
from stripe_fake.billing.invoicing import Invoicing
from stripe_fake.billing.objects import (
    Customer,
    Invoice,
    InvoiceItem,
    Price,
    Product,
    Subscription,
    SubscriptionItem,
)
from stripe_fake.billing.periods import DAY, add_intervals
from stripe_fake.billing.prorations import PRORATION_BEHAVIORS, proration_item
from stripe_fake.billing.state import BillingState
from stripe_fake.context import ApiContext
from stripe_fake.errors import StripeError, invalid_request, missing_param, resource_missing
from stripe_fake.events import AUTOMATIC, RequestInfo
from stripe_fake.listing import LIST_PARAMS, created_filter, paginate
from stripe_fake.params import opt_dict, opt_enum, opt_int, opt_list, opt_str, reject_unknown

UPDATE_PARAMS = frozenset(
    {
        "add_invoice_items",
        "application_fee_percent",
        "automatic_tax",
        "billing_cycle_anchor",
        "billing_schedules",
        "billing_thresholds",
        "cancel_at",
        "cancel_at_period_end",
        "cancellation_details",
        "collection_method",
        "days_until_due",
        "default_payment_method",
        "default_source",
        "default_tax_rates",
        "description",
        "discounts",
        "expand",
        "invoice_settings",
        "items",
        "metadata",
        "off_session",
        "on_behalf_of",
        "pause_collection",
        "payment_behavior",
        "payment_settings",
        "pending_invoice_item_interval",
        "proration_behavior",
        "proration_date",
        "transfer_data",
        "trial_end",
        "trial_from_plan",
        "trial_settings",
    }
)
CANCELED_UPDATABLE = frozenset({"metadata", "cancellation_details", "expand"})
ITEM_PARAMS = frozenset(
    {
        "billing_thresholds",
        "clear_usage",
        "current_trial",
        "deleted",
        "discounts",
        "id",
        "metadata",
        "plan",
        "price",
        "price_data",
        "quantity",
        "tax_rates",
    }
)
CANCEL_PARAMS = frozenset({"cancellation_details", "expand", "invoice_now", "prorate"})
LIST_STATUSES = [
    "active",
    "all",
    "canceled",
    "ended",
    "incomplete",
    "incomplete_expired",
    "past_due",
    "paused",
    "trialing",
    "unpaid",
]
SUB_LIST = LIST_PARAMS | {
    "automatic_tax",
    "collection_method",
    "created",
    "current_period_end",
    "current_period_start",
    "customer",
    "customer_account",
    "plan",
    "price",
    "status",
    "test_clock",
}
PAYMENT_BEHAVIORS = ["allow_incomplete", "default_incomplete", "error_if_incomplete", "pending_if_incomplete"]
FEEDBACK = [
    "customer_service",
    "low_quality",
    "missing_features",
    "other",
    "switched_service",
    "too_complex",
    "too_expensive",
    "unused",
]
EXPANDABLE = frozenset(
    {"customer", "default_payment_method", "latest_invoice", "latest_invoice.payments", "test_clock"}
)
CANCELED_MESSAGE = "A canceled subscription can only update its cancellation_details and metadata."
TRIAL_WILL_END_LEAD = 3 * DAY


@dataclass(frozen=True, slots=True)
class ItemSpec:
    """A price and quantity for a new subscription."""

    price: Price
    quantity: int


@dataclass(slots=True)
class _ItemChange:
    """One validated entry of ``items[]``: add (no item), modify, or delete an item."""

    item: SubscriptionItem | None
    price: Price
    quantity: int
    deleted: bool
    metadata: dict[str, str] | None
    new_price: tuple[Price, Product | None] | None = None
    item_id: str = ""


class SubscriptionService:
    """Subscription API and the operations the portal and Checkout build on."""

    def __init__(self, state: BillingState, invoicing: Invoicing, catalog: CatalogService) -> None:
        self._state = state
        self._invoicing = invoicing
        self._catalog = catalog

    # --- creation (Checkout) ----------------------------------------------------------------------

    def create(
        self,
        customer: Customer,
        items: list[ItemSpec],
        *,
        metadata: dict[str, str],
        trial_end: int | None,
        description: str | None,
        at: int,
        request: RequestInfo = AUTOMATIC,
    ) -> Subscription:
        """A new subscription (``incomplete``, or ``trialing``) and ``customer.subscription.created``."""
        recurring = items[0].price.recurring
        assert recurring is not None
        sub_id = ids.new_id("sub_1", 23)
        if trial_end is not None:
            anchor, steps, period_end = trial_end, 0, trial_end
        else:
            anchor, steps = at, 1
            period_end = add_intervals(at, recurring.interval, recurring.interval_count)
        sub = Subscription(
            id=sub_id,
            customer=customer.id,
            status="trialing" if trial_end is not None else "incomplete",
            items=[
                SubscriptionItem(
                    id=ids.new_id("si_", 14),
                    subscription=sub_id,
                    price=spec.price,
                    quantity=spec.quantity,
                    created=at,
                    current_period_start=at,
                    current_period_end=period_end,
                )
                for spec in items
            ],
            created=at,
            currency=items[0].price.currency,
            interval=recurring.interval,
            interval_count=recurring.interval_count,
            billing_cycle_anchor=anchor,
            anchor_steps=steps,
            metadata=dict(metadata),
            test_clock=customer.test_clock,
            description=description,
            trial_start=at if trial_end is not None else None,
            trial_end=trial_end,
        )
        self._state.store.subscriptions[sub.id] = sub
        if customer.currency is None:
            customer.currency = sub.currency
        self._state.emit("customer.subscription.created", sub.to_dict(), at=at, request=request)
        return sub

    def first_invoice(
        self,
        sub: Subscription,
        one_time: list[ItemSpec],
        *,
        at: int,
        request: RequestInfo = AUTOMATIC,
    ) -> Invoice:
        """The ``subscription_create`` invoice: created, finalized at once, then charged (or $0 and paid)."""
        customer = self._state.customer(sub.customer)
        invoice = self._invoicing.draft(
            customer,
            sub,
            "subscription_create",
            at=at,
            period_start=at,
            period_end=at,
            currency=sub.currency,
        )
        self._invoicing.add_period_lines(invoice, sub, at, sub.current_period_end, trial=sub.status == "trialing")
        for spec in one_time:
            self._invoicing.add_one_time_line(invoice, spec.price, spec.quantity, at)
        self._invoicing.emit("invoice.created", invoice, at=at, request=request)
        self._invoicing.finalize(invoice, at=at, request=request)
        if invoice.status == "open":
            self._invoicing.attempt(invoice, at=at, request=request, automatic=False)
        if sub.status == "trialing" and sub.trial_end is not None and sub.trial_end - at <= TRIAL_WILL_END_LEAD:
            self.trial_will_end(sub, at=at)
        return invoice

    def trial_will_end(self, sub: Subscription, *, at: int) -> None:
        """``customer.subscription.trial_will_end`` (once)."""
        if not sub.trial_will_end_sent:
            sub.trial_will_end_sent = True
            self._state.emit("customer.subscription.trial_will_end", sub.to_dict(), at=at)

    # --- API ----------------------------------------------------------------------------------------

    def retrieve(self, ctx: ApiContext, sub_id: str) -> dict[str, Any]:
        """``GET /v1/subscriptions/{id}`` (works for canceled subscriptions too)."""
        expand = expand_paths(ctx.params, EXPANDABLE)
        reject_unknown(ctx.params, {"expand"})
        return self.render(self.get(sub_id), expand)

    def list_subscriptions(self, ctx: ApiContext) -> dict[str, Any]:
        """``GET /v1/subscriptions`` (without ``status``, canceled ones are left out, as in Stripe)."""
        params = ctx.params
        reject_unknown(params, SUB_LIST)
        expand = expand_paths(params, EXPANDABLE, in_list=True)
        customer = opt_str(params, "customer")
        status = opt_enum(params, "status", LIST_STATUSES)
        price = opt_str(params, "price")
        clock = opt_str(params, "test_clock")
        in_range = created_filter(params)

        def status_ok(sub: Subscription) -> bool:
            if status is None:
                return sub.status not in ("canceled", "incomplete_expired")
            if status == "all":
                return True
            if status == "ended":
                return sub.status in ("canceled", "incomplete_expired")
            return sub.status == status

        subs = [
            s
            for s in reversed(self._state.store.subscriptions.values())
            if (customer is None or s.customer == customer)
            and status_ok(s)
            and (price is None or any(item.price.id == price for item in s.items))
            and (clock is None or s.test_clock == clock)
            and in_range(s.created)
        ]
        return paginate(
            subs,
            id_of=lambda s: s.id,
            render=lambda s: self.render(s, expand),
            params=params,
            url="/v1/subscriptions",
            kind="subscription",
        )

    def update(self, ctx: ApiContext, sub_id: str) -> dict[str, Any]:
        """``POST /v1/subscriptions/{id}``."""
        params = ctx.params
        reject_unknown(params, UPDATE_PARAMS)
        expand = expand_paths(params, EXPANDABLE)
        sub = self.get(sub_id)
        request = ctx.cause()
        at = self._state.now(sub.test_clock)
        if sub.status in ("canceled", "incomplete_expired"):
            if any(key not in CANCELED_UPDATABLE for key in params):
                raise invalid_request(CANCELED_MESSAGE)
            before = sub.to_dict()
            self._apply_details(sub, params)
            if "metadata" in params:
                sub.metadata = updated_metadata(sub.metadata, params)
            lifecycle.emit_updated(self._state, sub, before, at=at, request=request)
            return self.render(sub, expand)

        proration = opt_enum(params, "proration_behavior", PRORATION_BEHAVIORS) or "create_prorations"
        payment_behavior = opt_enum(params, "payment_behavior", PAYMENT_BEHAVIORS) or "allow_incomplete"
        proration_date = opt_int(params, "proration_date")
        when = proration_date if proration_date is not None else at
        changes = self._item_changes(sub, params, at)
        cancel = self._cancel_changes(sub, params, at)
        default_pm = self._default_pm(sub, params)
        prorations = self._prorations(sub, changes, when) if proration != "none" else []
        if proration == "always_invoice" and payment_behavior == "error_if_incomplete":
            self._refuse_if_charge_would_fail(sub, prorations, default_pm)

        before = sub.to_dict()
        for change in changes:
            self._apply_item_change(sub, change, at)
        if cancel is not None:
            cancel(sub)
        self._apply_details(sub, params)
        if "metadata" in params:
            sub.metadata = updated_metadata(sub.metadata, params)
        if "description" in params:
            sub.description = opt_str(params, "description")
        if "default_payment_method" in params:
            sub.default_payment_method = default_pm
        for item in prorations:
            self._state.store.invoice_items[item.id] = item

        invoice: Invoice | None = None
        if proration == "always_invoice" and prorations:
            customer = self._state.customer(sub.customer)
            invoice = self._invoicing.draft(
                customer, sub, "subscription_update", at=at, period_start=at, period_end=at, currency=sub.currency
            )
            self._invoicing.attach_pending_items(invoice)
        lifecycle.emit_updated(self._state, sub, before, at=at, request=request)
        if invoice is not None:
            self._invoicing.emit("invoice.created", invoice, at=at, request=request)
            self._invoicing.finalize_and_collect(invoice, at=at, request=request)
        return self.render(sub, expand)

    def cancel(self, ctx: ApiContext, sub_id: str) -> dict[str, Any]:
        """``DELETE /v1/subscriptions/{id}``: cancel now (404 when already canceled)."""
        params = ctx.params
        reject_unknown(params, CANCEL_PARAMS)
        expand = expand_paths(params, EXPANDABLE)
        sub = self._state.store.subscriptions.get(sub_id)
        if sub is None or sub.status in ("canceled", "incomplete_expired"):
            raise resource_missing("subscription", sub_id, "id")
        self._apply_details(sub, params)
        self.cancel_now(
            sub,
            at=self._state.now(sub.test_clock),
            request=ctx.cause(),
            invoice_now=opt_bool(params, "invoice_now") is True,
            prorate=opt_bool(params, "prorate") is True,
        )
        return self.render(sub, expand)

    # --- operations shared with the portal and the clock ------------------------------------------

    def cancel_now(
        self, sub: Subscription, *, at: int, request: RequestInfo, invoice_now: bool, prorate: bool
    ) -> Invoice | None:
        """Scenario F: ``customer.subscription.deleted``, then the final invoice when asked for."""
        if prorate:
            for item in sub.items:
                credit = proration_item(
                    sub,
                    price=item.price,
                    quantity=item.quantity,
                    product_name=self._invoicing.product_name(item.price),
                    subscription_item=item.id,
                    at=at,
                    credit=True,
                    test_clock=sub.test_clock,
                )
                if credit is not None:
                    self._state.store.invoice_items[credit.id] = credit
        elif not invoice_now:
            for pending in self._invoicing.pending_items(sub):
                if pending.proration:
                    del self._state.store.invoice_items[pending.id]
        sub.canceled_at = at
        lifecycle.end(self._state, sub, at=at, reason="cancellation_requested", request=request)
        if not invoice_now or not self._invoicing.pending_items(sub):
            return None
        customer = self._state.customer(sub.customer)
        invoice = self._invoicing.draft(
            customer, sub, "subscription_update", at=at, period_start=at, period_end=at, currency=sub.currency
        )
        self._invoicing.attach_pending_items(invoice)
        self._invoicing.emit("invoice.created", invoice, at=at, request=request)
        self._invoicing.finalize(invoice, at=at, request=request)
        if invoice.status == "open":
            self._invoicing.attempt(invoice, at=at, request=request, automatic=False)
        return invoice

    def schedule_cancel(
        self,
        sub: Subscription,
        *,
        at: int,
        request: RequestInfo,
        use_cancel_at: bool = False,
        feedback: str | None = None,
        comment: str | None = None,
    ) -> None:
        """Cancel at period end (the portal's default); ``use_cancel_at`` sets ``cancel_at`` only."""

        def change(s: Subscription) -> None:
            if use_cancel_at:
                s.cancel_at, s.cancel_at_period_end = s.current_period_end, False
            else:
                s.cancel_at, s.cancel_at_period_end = s.current_period_end, True
            s.canceled_at = at
            s.cancellation_reason = "cancellation_requested"
            s.cancellation_feedback = feedback
            s.cancellation_comment = comment

        lifecycle.mutate(self._state, sub, change, at=at, request=request)

    def undo_cancel(self, sub: Subscription, *, at: int, request: RequestInfo) -> None:
        """Keep the subscription after all (clears every scheduled-cancellation field)."""

        def change(s: Subscription) -> None:
            s.cancel_at, s.cancel_at_period_end, s.canceled_at = None, False, None
            s.cancellation_reason = s.cancellation_feedback = s.cancellation_comment = None

        lifecycle.mutate(self._state, sub, change, at=at, request=request)

    def get(self, sub_id: str) -> Subscription:
        """A subscription, or ``No such subscription``."""
        sub = self._state.store.subscriptions.get(sub_id)
        if sub is None:
            raise resource_missing("subscription", sub_id, "id")
        return sub

    def render(self, sub: Subscription, expand: list[str]) -> dict[str, Any]:
        """A subscription with the requested expansions."""
        obj = sub.to_dict()
        store = self._state.store
        wanted: set[str] = set(expand)
        if wanted & {"latest_invoice", "latest_invoice.payments"} and sub.latest_invoice:
            invoice = store.invoices.get(sub.latest_invoice)
            if invoice is not None:
                inv = invoice.to_dict()
                if "latest_invoice.payments" in wanted:
                    inv["payments"] = payments_list(self._state, invoice)
                obj["latest_invoice"] = inv
        if "customer" in wanted and sub.customer in store.customers:
            obj["customer"] = store.customers[sub.customer].to_dict()
        if "default_payment_method" in wanted and sub.default_payment_method in store.payment_methods:
            obj["default_payment_method"] = store.payment_methods[sub.default_payment_method].to_dict()
        if "test_clock" in wanted and sub.test_clock in store.test_clocks:
            obj["test_clock"] = store.test_clocks[sub.test_clock].to_dict()
        return obj

    # --- update helpers ---------------------------------------------------------------------------

    def _item_changes(self, sub: Subscription, params: dict[str, Any], at: int) -> list[_ItemChange]:
        raw = opt_list(params, "items") or []
        changes: list[_ItemChange] = []
        for index, spec in enumerate(raw):
            prefix = f"items[{index}]"
            if not isinstance(spec, dict):
                raise invalid_request("Invalid hash", prefix)
            reject_unknown(spec, ITEM_PARAMS, prefix)
            item_id = opt_str(spec, "id", f"{prefix}[id]")
            item = None
            if item_id is not None:
                item = next((i for i in sub.items if i.id == item_id), None)
                if item is None:
                    raise resource_missing("subscription_item", item_id, f"{prefix}[id]", status=400)
            deleted = opt_bool(spec, "deleted", f"{prefix}[deleted]") is True
            if deleted and item is None:
                raise missing_param(f"{prefix}[id]")
            price, new_price = self._item_price(sub, spec, prefix, item, at)
            quantity = opt_int(spec, "quantity", f"{prefix}[quantity]", minimum=0)
            if quantity is None:
                quantity = item.quantity if item is not None else 1
            meta = updated_metadata(item.metadata if item else {}, spec) if "metadata" in spec else None
            item_ref = item.id if item is not None else ids.new_id("si_", 14)
            changes.append(_ItemChange(item, price, quantity, deleted, meta, new_price, item_ref))
        remaining = [i for i in sub.items if all(c.item is not i or not c.deleted for c in changes)]
        if changes and not remaining and all(c.item is not None for c in changes):
            raise invalid_request("A subscription must have at least one active price.", "items")
        return changes

    def _item_price(
        self, sub: Subscription, spec: dict[str, Any], prefix: str, item: SubscriptionItem | None, at: int
    ) -> tuple[Price, tuple[Price, Product | None] | None]:
        price_id = opt_str(spec, "price", f"{prefix}[price]")
        price_data = opt_dict(spec, "price_data", f"{prefix}[price_data]")
        if price_id is not None and price_data is not None:
            raise invalid_request("You may only specify one of these parameters: price, price_data.", prefix)
        created: tuple[Price, Product | None] | None = None
        if price_id is not None:
            price = self._catalog.price(price_id, f"{prefix}[price]", status=400)
            if not price.active and (item is None or item.price.id != price.id):
                raise invalid_request(
                    "The price specified is inactive. This field only accepts active prices.", f"{prefix}[price]"
                )
        elif price_data is not None:
            created = self._catalog.inline_price(price_data, f"{prefix}[price_data]", at)
            price = created[0]
        elif item is not None:
            return item.price, None
        else:
            raise missing_param(f"{prefix}[price]")
        if price.recurring is None:
            raise invalid_request(
                "The price specified is set to `type=one_time` but this field only accepts prices with "
                "`type=recurring`.",
                f"{prefix}[price]",
            )
        if price.currency != sub.currency:
            raise invalid_request(
                f"The price specified uses currency `{price.currency}` but the subscription uses `{sub.currency}`.",
                f"{prefix}[price]",
            )
        if (price.recurring.interval, price.recurring.interval_count) != (sub.interval, sub.interval_count):
            raise invalid_request(
                "The price specified has a different billing interval than the other prices on this "
                "subscription; all prices on a subscription must share `recurring.interval` and "
                "`recurring.interval_count`.",
                f"{prefix}[price]",
            )
        return price, created

    def _cancel_changes(self, sub: Subscription, params: dict[str, Any], at: int) -> Any:
        """Validate ``cancel_at``/``cancel_at_period_end``; return the change to apply (or ``None``)."""
        at_period_end = opt_bool(params, "cancel_at_period_end")
        has_cancel_at = "cancel_at" in params
        raw = params.get("cancel_at")
        if has_cancel_at and raw not in ("", None) and at_period_end is True:
            raise invalid_request(
                "You may only specify one of these parameters: cancel_at, cancel_at_period_end.", "cancel_at"
            )
        if not has_cancel_at and at_period_end is None:
            return None
        cancel_at: int | None = None
        if has_cancel_at and raw not in ("", None):
            if raw in ("min_period_end", "max_period_end"):
                cancel_at = sub.current_period_end
            else:
                cancel_at = opt_int(params, "cancel_at")
                assert cancel_at is not None
                if cancel_at <= at:
                    raise invalid_request("`cancel_at` must be a timestamp in the future.", "cancel_at")

        def change(s: Subscription) -> None:
            if cancel_at is not None:
                s.cancel_at, s.cancel_at_period_end = cancel_at, False
                s.canceled_at, s.cancellation_reason = at, "cancellation_requested"
            elif at_period_end is True:
                s.cancel_at, s.cancel_at_period_end = s.current_period_end, True
                s.canceled_at, s.cancellation_reason = at, "cancellation_requested"
            else:
                s.cancel_at, s.cancel_at_period_end, s.canceled_at, s.cancellation_reason = None, False, None, None

        return change

    def _default_pm(self, sub: Subscription, params: dict[str, Any]) -> str | None:
        pm_id = opt_str(params, "default_payment_method")
        if pm_id is None:
            return None
        pm = self._state.store.payment_methods.get(pm_id)
        if pm is None or pm.customer != sub.customer:
            raise invalid_request(
                f"The customer does not have a payment method with the ID {pm_id}. The payment method must be "
                "attached to the customer.",
                "default_payment_method",
                code="resource_missing",
            )
        return pm_id

    def _apply_details(self, sub: Subscription, params: dict[str, Any]) -> None:
        details = opt_dict(params, "cancellation_details")
        if details is None:
            return
        reject_unknown(details, {"comment", "feedback", "feedback_option"}, "cancellation_details")
        if "comment" in details:
            sub.cancellation_comment = opt_str(details, "comment", "cancellation_details[comment]")
        if "feedback" in details:
            sub.cancellation_feedback = opt_enum(details, "feedback", FEEDBACK, "cancellation_details[feedback]")

    def _prorations(self, sub: Subscription, changes: list[_ItemChange], at: int) -> list[InvoiceItem]:
        """Credit and debit items for every changed price or quantity (not stored yet)."""
        items: list[InvoiceItem | None] = []
        for change in changes:
            old = change.item
            if (
                old is not None
                and not change.deleted
                and (old.price.id, old.quantity)
                == (
                    change.price.id,
                    change.quantity,
                )
            ):
                continue
            if old is not None:
                items.append(self._proration(sub, old.price, old.quantity, change.item_id, at, credit=True))
            if not change.deleted and change.quantity > 0:
                items.append(self._proration(sub, change.price, change.quantity, change.item_id, at, credit=False))
        return [i for i in items if i is not None and i.amount != 0]

    def _proration(
        self, sub: Subscription, price: Price, quantity: int, si_id: str, at: int, *, credit: bool
    ) -> InvoiceItem | None:
        return proration_item(
            sub,
            price=price,
            quantity=quantity,
            product_name=self._invoicing.product_name(price),
            subscription_item=si_id,
            at=at,
            credit=credit,
            test_clock=sub.test_clock,
        )

    def _refuse_if_charge_would_fail(
        self, sub: Subscription, prorations: list[InvoiceItem], default_pm: str | None
    ) -> None:
        due = sum(i.amount for i in prorations) + sum(i.amount for i in self._invoicing.pending_items(sub))
        if due <= 0:
            return
        store = self._state.store
        pm = store.payment_methods.get(default_pm or "")
        if pm is None:
            probe = Invoice(
                id="in_probe",
                customer=sub.customer,
                subscription=sub.id,
                billing_reason="subscription_update",
                created=0,
                currency=sub.currency,
                period_start=0,
                period_end=0,
            )
            pm = payment_method_for(self._state, probe)
        if pm is None or not pm.behavior.charges_succeed:
            code = pm.behavior.charge_decline_code if pm is not None else None
            raise StripeError(
                402,
                "Your card was declined.",
                type="card_error",
                code="card_declined",
                extra={"decline_code": code or "generic_decline"},
            )

    def _apply_item_change(self, sub: Subscription, change: _ItemChange, at: int) -> None:
        if change.new_price is not None:
            self._catalog.store_inline(*change.new_price)
        item = change.item
        if item is None:
            new_item = SubscriptionItem(
                id=change.item_id,
                subscription=sub.id,
                price=change.price,
                quantity=change.quantity,
                created=at,
                current_period_start=at,
                current_period_end=sub.current_period_end,
                metadata=change.metadata or {},
            )
            sub.items.append(new_item)
            return
        if change.deleted:
            sub.items.remove(item)
            return
        item.price = change.price
        item.quantity = change.quantity
        if change.metadata is not None:
            item.metadata = change.metadata


def payments_list(state: BillingState, invoice: Invoice) -> dict[str, Any]:
    """The includable ``invoice.payments`` list."""
    data = [p.to_dict() for p in state.store.invoice_payments.values() if p.invoice == invoice.id]
    return {"object": "list", "data": data, "has_more": False, "url": f"/v1/invoices/{invoice.id}/payments"}
