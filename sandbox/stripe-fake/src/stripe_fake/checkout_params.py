"""Validation of ``POST /v1/checkout/sessions`` parameters.

The rules are the ones the payment flow depends on (see the reference's "Fake Stripe contract"):
``payment`` mode, and ``subscription`` mode when billing is wired in (``setup`` is refused), the
dahlia+ ``ui_mode`` values (``embedded``/``hosted``/``custom`` are refused), ``price_data`` line items
(or catalogue ``price`` ids), ``return_url`` for embedded pages and no ``success_url``/``cancel_url`` there,
``expires_at`` between 30 minutes and 24 hours ahead on the fake clock, and metadata limits. Unknown
parameters are refused as Stripe does; the allowed names are those of stripe 16.1.0's
``SessionCreateParams`` (API version 2026-10-28.endive, where ``payment_method_types`` no longer exists).
Every error names the offending parameter in ``param``.
"""

from __future__ import annotations

import decimal
import re
from dataclasses import dataclass, field
from typing import Any, Protocol

from stripe_fake.billing.objects import Price, Product
from stripe_fake.errors import StripeError, invalid_enum, invalid_request, missing_param, resource_missing
from stripe_fake.forms import Params, param_name
from stripe_fake.params import (
    metadata,
    one_of,
    opt_dict,
    opt_enum,
    opt_int,
    opt_list,
    opt_present,
    opt_str,
    reject_unknown,
    req_str,
    str_list,
)

MIN_EXPIRY_SECONDS = 30 * 60
MAX_EXPIRY_SECONDS = 24 * 3600
MAX_LINE_ITEMS = 100
MAX_CLIENT_REFERENCE_ID = 200

MODES = ["payment", "setup", "subscription"]
UI_MODES = ["elements", "embedded_page", "form", "hosted_page"]
CLIENT_SECRET_UI_MODES = {"elements", "embedded_page", "form"}
REDIRECT_ON_COMPLETION = ["always", "if_required", "never"]

CREATE_PARAMS = frozenset(
    {
        "adaptive_pricing",
        "after_expiration",
        "allow_promotion_codes",
        "allowed_payment_method_types",
        "automatic_tax",
        "billing_address_collection",
        "branding_settings",
        "cancel_url",
        "client_reference_id",
        "consent_collection",
        "currency",
        "custom_fields",
        "custom_text",
        "customer",
        "customer_account",
        "customer_creation",
        "customer_email",
        "customer_update",
        "discounts",
        "excluded_payment_method_types",
        "expand",
        "expires_at",
        "integration_identifier",
        "invoice_creation",
        "line_items",
        "locale",
        "managed_payments",
        "metadata",
        "mode",
        "name_collection",
        "optional_items",
        "origin_context",
        "payment_intent_data",
        "payment_method_collection",
        "payment_method_configuration",
        "payment_method_data",
        "payment_method_options",
        "permissions",
        "phone_number_collection",
        "redirect_on_completion",
        "return_url",
        "saved_payment_method_options",
        "setup_intent_data",
        "shipping_address_collection",
        "shipping_options",
        "submit_type",
        "subscription_data",
        "success_url",
        "tax_id_collection",
        "ui_mode",
        "wallet_options",
    }
)
LINE_ITEM_PARAMS = frozenset({"adjustable_quantity", "metadata", "price", "price_data", "quantity", "tax_rates"})
PRICE_DATA_PARAMS = frozenset(
    {"currency", "product", "product_data", "recurring", "tax_behavior", "unit_amount", "unit_amount_decimal"}
)
PRODUCT_DATA_PARAMS = frozenset({"description", "images", "metadata", "name", "tax_code", "tax_details", "unit_label"})
PAYMENT_INTENT_DATA_PARAMS = frozenset(
    {
        "application_fee_amount",
        "capture_method",
        "description",
        "metadata",
        "on_behalf_of",
        "receipt_email",
        "setup_future_usage",
        "shipping",
        "statement_descriptor",
        "statement_descriptor_suffix",
        "transfer_data",
        "transfer_group",
    }
)

SUBSCRIPTION_DATA_PARAMS = frozenset(
    {
        "application_fee_percent",
        "billing_cycle_anchor",
        "billing_cycle_anchor_config",
        "billing_mode",
        "default_tax_rates",
        "description",
        "invoice_settings",
        "metadata",
        "on_behalf_of",
        "pending_invoice_item_interval",
        "proration_behavior",
        "transfer_data",
        "trial_end",
        "trial_period_days",
        "trial_settings",
    }
)
MIN_TRIAL_END_SECONDS = 48 * 3600
MAX_TRIAL_DAYS = 730
INVOICE_CREATION_MESSAGE = (
    "You can only enable invoice creation when `mode` is set to `payment`. Invoices are created automatically "
    "when `mode` is set to `subscription`, and are unsupported when set to `setup`. To learn more visit "
    "https://stripe.com/docs/payments/checkout/post-payment-invoices."
)

_CURRENCY = re.compile(r"[a-z]{3}")


class CheckoutCatalog(Protocol):
    """What Checkout needs from billing: prices, products and customers (see ``billing.checkout``)."""

    def price(self, price_id: str, param: str) -> Price:
        """A catalogue price, or a 400 ``resource_missing`` naming ``param``."""

    def product(self, product_id: str, param: str) -> Product:
        """A catalogue product, or a 400 ``resource_missing`` naming ``param``."""

    def inline_price(self, data: dict[str, Any], prefix: str, at: int) -> tuple[Price, Product | None]:
        """A ``price_data`` hash as a new (not yet stored) price and, for ``product_data``, product."""

    def has_customer(self, customer_id: str) -> bool:
        """Whether the customer exists."""


_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


@dataclass(frozen=True, slots=True)
class LineItemSpec:
    """A validated line item (``price`` is set for catalogue and subscription-mode prices)."""

    description: str
    currency: str
    unit_amount: int
    unit_amount_decimal: str
    quantity: int
    amount: int
    metadata: dict[str, str]
    price: Price | None = None
    new_product: Product | None = None
    new_price: bool = False


@dataclass(frozen=True, slots=True)
class SubscriptionDataSpec:
    """Validated ``subscription_data`` (what the subscription inherits)."""

    metadata: dict[str, str] = field(default_factory=dict)
    trial_period_days: int | None = None
    trial_end: int | None = None
    description: str | None = None


@dataclass(frozen=True, slots=True)
class SessionSpec:
    """Validated parameters of a new Checkout Session."""

    mode: str
    ui_mode: str
    line_items: list[LineItemSpec]
    currency: str
    expires_at: int
    metadata: dict[str, str]
    client_reference_id: str | None
    customer_email: str | None
    return_url: str | None
    redirect_on_completion: str | None
    success_url: str | None
    cancel_url: str | None
    allowed_payment_method_types: list[str] | None
    locale: str | None
    submit_type: str | None
    billing_address_collection: str | None
    customer_creation: str | None
    payment_intent_metadata: dict[str, str]
    payment_intent_description: str | None
    expand: list[str]
    customer: str | None = None
    subscription_data: SubscriptionDataSpec | None = None


def parse_create(params: Params, now: int, catalog: CheckoutCatalog | None = None) -> SessionSpec:
    """Validate create parameters against ``now`` (fake clock) or raise a Stripe 400."""
    reject_unknown(params, CREATE_PARAMS)
    mode = opt_enum(params, "mode", MODES)
    if mode is None:
        raise missing_param("mode")
    supported = ("payment", "subscription") if catalog is not None else ("payment",)
    if mode not in supported:
        modes = " or ".join(f"`mode={m}`" for m in supported)
        raise invalid_request(f"The Stripe stand-in only supports {modes} (got `{mode}`).", "mode")
    ui_mode = opt_str(params, "ui_mode") or "hosted_page"
    if ui_mode not in UI_MODES:
        raise invalid_enum("ui_mode", ui_mode, UI_MODES)
    subscription_data: SubscriptionDataSpec | None = None
    if mode == "subscription":
        for name, message in (
            ("customer_creation", "`customer_creation` can only be used in `payment` mode."),
            ("invoice_creation", INVOICE_CREATION_MESSAGE),
            ("payment_intent_data", "You can not pass `payment_intent_data` in `subscription` mode."),
        ):
            if opt_present(params, name):
                raise invalid_request(message, name)
        subscription_data = _subscription_data(params, now)

    items = _line_items(params, mode, catalog, now)
    if mode == "subscription":
        _check_recurring(items)
    currencies = {item.currency for item in items}
    if len(currencies) > 1:
        raise invalid_request(
            "All line items in a Checkout Session must use the same currency; got "
            + ", ".join(sorted(currencies))
            + ".",
            "line_items",
        )
    urls = _urls(params, ui_mode)
    expires_at = _expires_at(params, now)
    session_metadata = metadata(params)
    pi_data = opt_dict(params, "payment_intent_data") or {}
    reject_unknown(pi_data, PAYMENT_INTENT_DATA_PARAMS, "payment_intent_data")
    pi_metadata = metadata(pi_data, "metadata", "payment_intent_data[metadata]")
    pi_description = opt_str(pi_data, "description", "payment_intent_data[description]")

    client_reference_id = opt_str(params, "client_reference_id")
    if client_reference_id is not None and len(client_reference_id) > MAX_CLIENT_REFERENCE_ID:
        raise invalid_request(
            f"Invalid string: {client_reference_id[:20]}...; must be at most {MAX_CLIENT_REFERENCE_ID} characters",
            "client_reference_id",
        )
    customer_email = opt_str(params, "customer_email")
    if customer_email is not None and not _EMAIL.fullmatch(customer_email):
        raise invalid_request(f"Invalid email address: {customer_email}", "customer_email")
    customer = opt_str(params, "customer")
    if customer is not None and (catalog is None or not catalog.has_customer(customer)):
        raise resource_missing("customer", customer, "customer", status=400)
    if customer is not None and customer_email is not None:
        raise invalid_request(
            "You may only specify one of these parameters: customer, customer_email.", "customer_email"
        )
    allowed_types = str_list(params, "allowed_payment_method_types") or None

    return SessionSpec(
        mode=mode,
        ui_mode=ui_mode,
        line_items=items,
        currency=items[0].currency,
        expires_at=expires_at,
        metadata=session_metadata,
        client_reference_id=client_reference_id,
        customer_email=customer_email,
        return_url=urls["return_url"],
        redirect_on_completion=urls["redirect_on_completion"],
        success_url=urls["success_url"],
        cancel_url=urls["cancel_url"],
        allowed_payment_method_types=allowed_types,
        locale=opt_str(params, "locale"),
        submit_type=opt_str(params, "submit_type"),
        billing_address_collection=opt_str(params, "billing_address_collection"),
        customer_creation=None if mode == "subscription" else opt_str(params, "customer_creation") or "if_required",
        payment_intent_metadata=pi_metadata,
        payment_intent_description=pi_description,
        expand=str_list(params, "expand"),
        customer=customer,
        subscription_data=subscription_data,
    )


def _subscription_data(params: Params, now: int) -> SubscriptionDataSpec:
    data = opt_dict(params, "subscription_data") or {}
    reject_unknown(data, SUBSCRIPTION_DATA_PARAMS, "subscription_data")
    one_of(data, "trial_period_days", "trial_end", "subscription_data")
    days = opt_int(data, "trial_period_days", "subscription_data[trial_period_days]", minimum=1)
    if days is not None and days > MAX_TRIAL_DAYS:
        raise invalid_request(
            f"`subscription_data[trial_period_days]` can be at most {MAX_TRIAL_DAYS}.",
            "subscription_data[trial_period_days]",
        )
    trial_end = opt_int(data, "trial_end", "subscription_data[trial_end]")
    if trial_end is not None and trial_end < now + MIN_TRIAL_END_SECONDS:
        raise invalid_request(
            "`subscription_data[trial_end]` must be at least 48 hours in the future.", "subscription_data[trial_end]"
        )
    return SubscriptionDataSpec(
        metadata=metadata(data, "metadata", "subscription_data[metadata]"),
        trial_period_days=days,
        trial_end=trial_end,
        description=opt_str(data, "description", "subscription_data[description]"),
    )


def _check_recurring(items: list[LineItemSpec]) -> None:
    """Subscription mode needs a recurring price, and every recurring price must bill alike."""
    recurring = [i.price.recurring for i in items if i.price is not None and i.price.recurring is not None]
    if not recurring:
        raise invalid_request(
            "You must provide at least one recurring price in `subscription` mode when using prices.", "line_items"
        )
    if len({(r.interval, r.interval_count) for r in recurring}) > 1:
        raise invalid_request(
            "Checkout does not support multiple prices with different billing intervals.", "line_items"
        )


def _line_items(params: Params, mode: str, catalog: CheckoutCatalog | None, now: int) -> list[LineItemSpec]:
    raw = opt_list(params, "line_items")
    if not raw:
        raise missing_param("line_items")
    if len(raw) > MAX_LINE_ITEMS:
        raise invalid_request(
            f"`line_items` can contain at most {MAX_LINE_ITEMS} items; you passed {len(raw)}.", "line_items"
        )
    return [_line_item(item, index, mode, catalog, now) for index, item in enumerate(raw)]


def _line_item(item: Any, index: int, mode: str, catalog: CheckoutCatalog | None, now: int) -> LineItemSpec:
    prefix = param_name("line_items", index)
    if not isinstance(item, dict):
        raise invalid_request("Invalid hash", prefix)
    reject_unknown(item, LINE_ITEM_PARAMS, prefix)
    one_of(item, "price", "price_data", prefix)
    price = opt_str(item, "price", f"{prefix}[price]")
    if price is not None:
        if catalog is None:
            raise resource_missing("price", price, f"{prefix}[price]", status=400)
        return _catalog_item(item, prefix, mode, catalog.price(price, f"{prefix}[price]"), catalog, None, is_new=False)
    price_data = opt_dict(item, "price_data", f"{prefix}[price_data]")
    if (
        price_data is not None
        and catalog is not None
        and (mode == "subscription" or opt_present(price_data, "product"))
    ):
        if mode == "payment" and opt_present(price_data, "recurring"):
            raise _recurring_in_payment_mode(f"{prefix}[price_data][recurring]")
        new_price, new_product = catalog.inline_price(price_data, f"{prefix}[price_data]", now)
        return _catalog_item(item, prefix, mode, new_price, catalog, new_product, is_new=True)
    if price_data is None:
        raise invalid_request(
            f"You must specify either `price` or `price_data` in `{prefix}`.", f"{prefix}[price_data]"
        )
    quantity = opt_int(item, "quantity", f"{prefix}[quantity]", minimum=1)
    if quantity is None:
        raise missing_param(f"{prefix}[quantity]")
    description, currency, unit_amount, unit_decimal = _price_data(price_data, f"{prefix}[price_data]")
    amount = int((unit_decimal * quantity).to_integral_value(rounding=decimal.ROUND_HALF_EVEN))
    return LineItemSpec(
        description=description,
        currency=currency,
        unit_amount=unit_amount,
        unit_amount_decimal=format(unit_decimal.normalize(), "f"),
        quantity=quantity,
        amount=amount,
        metadata=metadata(item, "metadata", f"{prefix}[metadata]"),
    )


def _price_data(data: dict[str, Any], prefix: str) -> tuple[str, str, int, decimal.Decimal]:
    reject_unknown(data, PRICE_DATA_PARAMS, prefix)
    currency = req_str(data, "currency", f"{prefix}[currency]").lower()
    if not _CURRENCY.fullmatch(currency):
        raise invalid_request(f"Invalid currency: {currency}.", f"{prefix}[currency]")
    if opt_present(data, "recurring"):
        raise _recurring_in_payment_mode(f"{prefix}[recurring]")
    one_of(data, "product", "product_data", prefix)
    product = opt_str(data, "product", f"{prefix}[product]")
    if product is not None:
        raise resource_missing("product", product, f"{prefix}[product]", status=400)
    product_data = opt_dict(data, "product_data", f"{prefix}[product_data]")
    if product_data is None:
        raise invalid_request(
            "You must specify either `product` or `product_data` when creating a price.",
            f"{prefix}[product_data]",
        )
    reject_unknown(product_data, PRODUCT_DATA_PARAMS, f"{prefix}[product_data]")
    name = req_str(product_data, "name", f"{prefix}[product_data][name]")
    metadata(product_data, "metadata", f"{prefix}[product_data][metadata]")

    one_of(data, "unit_amount", "unit_amount_decimal", prefix)
    unit_amount = opt_int(data, "unit_amount", f"{prefix}[unit_amount]", minimum=0)
    if unit_amount is not None:
        return name, currency, unit_amount, decimal.Decimal(unit_amount)
    raw_decimal = opt_str(data, "unit_amount_decimal", f"{prefix}[unit_amount_decimal]")
    if raw_decimal is None:
        raise missing_param(f"{prefix}[unit_amount]")
    try:
        unit_decimal = decimal.Decimal(raw_decimal)
    except decimal.InvalidOperation:
        raise invalid_request(f"Invalid decimal: {raw_decimal}", f"{prefix}[unit_amount_decimal]") from None
    if not unit_decimal.is_finite() or unit_decimal < 0:
        raise invalid_request("This value must be greater than or equal to 0.", f"{prefix}[unit_amount_decimal]")
    rounded = int(unit_decimal.to_integral_value(rounding=decimal.ROUND_HALF_EVEN))
    return name, currency, rounded, unit_decimal


def _recurring_in_payment_mode(param: str) -> StripeError:
    return invalid_request(
        "You specified `payment` mode but passed a recurring price. Either switch to `subscription` "
        "mode or use only one-time prices.",
        param,
    )


def _catalog_item(
    item: dict[str, Any],
    prefix: str,
    mode: str,
    price: Price,
    catalog: CheckoutCatalog,
    new_product: Product | None,
    *,
    is_new: bool,
) -> LineItemSpec:
    """A line item priced by a catalogue (or inline, ``is_new``) Price object."""
    if mode == "payment" and price.recurring is not None:
        raise _recurring_in_payment_mode(f"{prefix}[price]")
    if not is_new and not price.active:
        raise invalid_request(
            "The price specified is inactive. This field only accepts active prices.", f"{prefix}[price]"
        )
    quantity = opt_int(item, "quantity", f"{prefix}[quantity]", minimum=1)
    if quantity is None:
        raise missing_param(f"{prefix}[quantity]")
    product = new_product or catalog.product(price.product, f"{prefix}[price]")
    return LineItemSpec(
        description=product.name,
        currency=price.currency,
        unit_amount=price.unit_amount,
        unit_amount_decimal=price.unit_amount_decimal,
        quantity=quantity,
        amount=price.unit_amount * quantity,
        metadata=metadata(item, "metadata", f"{prefix}[metadata]"),
        price=price,
        new_product=new_product,
        new_price=is_new,
    )


def _urls(params: Params, ui_mode: str) -> dict[str, str | None]:
    return_url = _url(params, "return_url")
    success_url = _url(params, "success_url")
    cancel_url = _url(params, "cancel_url")
    redirect = opt_enum(params, "redirect_on_completion", REDIRECT_ON_COMPLETION)
    if ui_mode in CLIENT_SECRET_UI_MODES:
        for name, value in (("success_url", success_url), ("cancel_url", cancel_url)):
            if value is not None:
                raise invalid_request(
                    f"`{name}` is not allowed when `ui_mode` is `{ui_mode}`. Use `return_url` instead.", name
                )
    if ui_mode == "embedded_page":
        redirect = redirect or "always"
        if redirect == "never" and return_url is not None:
            raise invalid_request("`return_url` cannot be set when `redirect_on_completion` is `never`.", "return_url")
        if redirect != "never" and return_url is None:
            raise invalid_request(
                "`return_url` is required when `ui_mode` is `embedded_page` and `redirect_on_completion` "
                f"is `{redirect}`.",
                "return_url",
            )
    else:
        if redirect is not None:
            raise invalid_request(
                "`redirect_on_completion` can only be used when `ui_mode` is `embedded_page`.",
                "redirect_on_completion",
            )
        if ui_mode == "hosted_page" and return_url is not None:
            raise invalid_request(
                "`return_url` can only be used when `ui_mode` is `embedded_page`, `elements` or `form`.",
                "return_url",
            )
    return {
        "return_url": return_url,
        "success_url": success_url,
        "cancel_url": cancel_url,
        "redirect_on_completion": redirect,
    }


def _url(params: Params, name: str) -> str | None:
    value = opt_str(params, name)
    if value is not None and not (value.startswith("https://") or value.startswith("http://")):
        raise invalid_request("Not a valid URL: an explicit scheme (such as https) must be provided.", name)
    return value


def _expires_at(params: Params, now: int) -> int:
    expires_at = opt_int(params, "expires_at")
    if expires_at is None:
        return now + MAX_EXPIRY_SECONDS
    if expires_at < now + MIN_EXPIRY_SECONDS:
        raise invalid_request(
            "The `expires_at` timestamp must be at least 30 minutes from Checkout Session creation.",
            "expires_at",
        )
    if expires_at > now + MAX_EXPIRY_SECONDS:
        raise invalid_request(
            "The `expires_at` timestamp must be less than 24 hours from Checkout Session creation.",
            "expires_at",
        )
    return expires_at


__all__ = ["SessionSpec", "StripeError", "parse_create"]
