"""``/v1/products`` and ``/v1/prices``: the catalogue.

Also the shared price resolution used by Checkout and subscription updates: a ``price`` id must exist
(400 ``resource_missing`` naming the parameter), and ``price_data`` creates an inactive, unlisted
price on the fly, as Stripe does for inline prices.
"""

from __future__ import annotations

import decimal
import re
from typing import Any

from stripe_fake import ids
from stripe_fake.billing.common import exclusive, expand_paths, opt_bool, updated_metadata
from stripe_fake.billing.objects import Price, Product, Recurring
from stripe_fake.billing.periods import INTERVALS
from stripe_fake.billing.state import BillingState, diff
from stripe_fake.context import ApiContext
from stripe_fake.errors import invalid_request, missing_param, resource_missing
from stripe_fake.listing import LIST_PARAMS, created_filter, paginate
from stripe_fake.params import (
    metadata,
    opt_dict,
    opt_enum,
    opt_int,
    opt_str,
    reject_unknown,
    req_str,
    str_list,
)

PRODUCT_CREATE = frozenset(
    {
        "active",
        "default_price_data",
        "description",
        "expand",
        "id",
        "images",
        "marketing_features",
        "metadata",
        "name",
        "package_dimensions",
        "shippable",
        "statement_descriptor",
        "tax_code",
        "tax_details",
        "type",
        "unit_label",
        "url",
    }
)
PRODUCT_UPDATE = (PRODUCT_CREATE - {"id", "default_price_data", "type"}) | {"default_price"}
PRODUCT_LIST = LIST_PARAMS | {"active", "created", "ids", "shippable", "type", "url"}
PRICE_CREATE = frozenset(
    {
        "active",
        "billing_scheme",
        "currency",
        "currency_options",
        "custom_unit_amount",
        "expand",
        "lookup_key",
        "metadata",
        "nickname",
        "product",
        "product_data",
        "recurring",
        "tax_behavior",
        "tiers",
        "tiers_mode",
        "transfer_lookup_key",
        "transform_quantity",
        "unit_amount",
        "unit_amount_decimal",
    }
)
PRICE_UPDATE = frozenset(
    {
        "active",
        "currency_options",
        "expand",
        "lookup_key",
        "metadata",
        "nickname",
        "tax_behavior",
        "transfer_lookup_key",
    }
)
PRICE_LIST = LIST_PARAMS | {"active", "created", "currency", "lookup_keys", "product", "recurring", "type"}
RECURRING_PARAMS = frozenset({"interval", "interval_count", "meter", "trial_period_days", "usage_type"})
INLINE_PRICE_PARAMS = frozenset(
    {"currency", "product", "product_data", "recurring", "tax_behavior", "unit_amount", "unit_amount_decimal"}
)
PRODUCT_DATA_PARAMS = frozenset({"description", "images", "metadata", "name", "tax_code", "tax_details", "unit_label"})
MAX_INTERVALS = {"day": 1095, "week": 156, "month": 36, "year": 3}
MAX_LOOKUP_KEYS = 10
TAX_BEHAVIORS = ["exclusive", "inclusive", "unspecified"]
_CURRENCY = re.compile(r"[a-z]{3}")


class CatalogService:
    """Products and prices."""

    def __init__(self, state: BillingState) -> None:
        self._state = state

    # --- products ---------------------------------------------------------------------------------

    def create_product(self, ctx: ApiContext) -> dict[str, Any]:
        """``POST /v1/products``."""
        params = ctx.params
        reject_unknown(params, PRODUCT_CREATE)
        store = self._state.store
        product_id = opt_str(params, "id") or ids.new_id("prod_", 14)
        if product_id in store.products:
            raise invalid_request(f"Product already exists: {product_id}", "id", code="resource_already_exists")
        product = Product(
            id=product_id,
            name=req_str(params, "name"),
            created=ctx.now_int,
            active=opt_bool(params, "active") is not False,
            description=opt_str(params, "description"),
            metadata=metadata(params),
            type=opt_enum(params, "type", ["good", "service"]) or "service",
            unit_label=opt_str(params, "unit_label"),
            statement_descriptor=opt_str(params, "statement_descriptor"),
            url=opt_str(params, "url"),
            images=str_list(params, "images"),
        )
        default_price_data = opt_dict(params, "default_price_data")
        price: Price | None = None
        if default_price_data is not None:
            price = self._price_from(default_price_data, "default_price_data", product.id, ctx.now_int, inline=False)
        store.products[product.id] = product
        self._state.emit("product.created", product.to_dict(), at=ctx.now_int, request=ctx.cause())
        if price is not None:
            store.prices[price.id] = price
            product.default_price = price.id
            self._state.emit("price.created", price.to_dict(), at=ctx.now_int, request=ctx.cause())
        return product.to_dict()

    def retrieve_product(self, ctx: ApiContext, product_id: str) -> dict[str, Any]:
        """``GET /v1/products/{id}``."""
        reject_unknown(ctx.params, {"expand"})
        return self.product(product_id, "id").to_dict()

    def update_product(self, ctx: ApiContext, product_id: str) -> dict[str, Any]:
        """``POST /v1/products/{id}``."""
        params = ctx.params
        reject_unknown(params, PRODUCT_UPDATE)
        product = self.product(product_id, "id")
        before = product.to_dict()
        default_price = opt_str(params, "default_price")
        if default_price is not None:
            price = self.price(default_price, "default_price", status=400)
            if price.product != product.id:
                raise invalid_request("The default price must belong to this product.", "default_price")
            product.default_price = price.id
        if (name := opt_str(params, "name")) is not None:
            product.name = name
        if (active := opt_bool(params, "active")) is not None:
            product.active = active
        if "description" in params:
            product.description = opt_str(params, "description")
        if "metadata" in params:
            product.metadata = updated_metadata(product.metadata, params)
        product.updated = ctx.now_int
        self._emit_updated("product.updated", before, product.to_dict(), ctx)
        return product.to_dict()

    def list_products(self, ctx: ApiContext) -> dict[str, Any]:
        """``GET /v1/products`` (newest first; ``active``, ``ids[]``, ``type``)."""
        params = ctx.params
        reject_unknown(params, PRODUCT_LIST)
        active = opt_bool(params, "active")
        wanted = set(str_list(params, "ids"))
        kind = opt_enum(params, "type", ["good", "service"])
        in_range = created_filter(params)
        products = [
            p
            for p in reversed(self._state.store.products.values())
            if (active is None or p.active == active)
            and (not wanted or p.id in wanted)
            and (kind is None or p.type == kind)
            and in_range(p.created)
        ]
        return paginate(
            products,
            id_of=lambda p: p.id,
            render=lambda p: p.to_dict(),
            params=params,
            url="/v1/products",
            kind="product",
        )

    # --- prices -----------------------------------------------------------------------------------

    def create_price(self, ctx: ApiContext) -> dict[str, Any]:
        """``POST /v1/prices``."""
        params = ctx.params
        reject_unknown(params, PRICE_CREATE)
        expand = expand_paths(params, frozenset({"product"}))
        if opt_str(params, "billing_scheme") == "tiered" or "tiers" in params:
            raise invalid_request("The Stripe stand-in only models `billing_scheme=per_unit` prices.", "billing_scheme")
        exclusive(params, "product", "product_data")
        product_data = opt_dict(params, "product_data")
        product_id = opt_str(params, "product")
        new_product: Product | None = None
        if product_id is not None:
            self.product(product_id, "product", status=400)
        elif product_data is not None:
            new_product = self._product_from(product_data, "product_data", ctx.now_int)
            product_id = new_product.id
        else:
            raise missing_param("product")
        price = self._price_from(params, None, product_id, ctx.now_int, inline=False)
        price.active = opt_bool(params, "active") is not False
        price.nickname = opt_str(params, "nickname")
        price.metadata = metadata(params)
        price.lookup_key = self._lookup_key(params, price.id)
        store = self._state.store
        if new_product is not None:
            store.products[new_product.id] = new_product
            self._state.emit("product.created", new_product.to_dict(), at=ctx.now_int, request=ctx.cause())
        store.prices[price.id] = price
        self._state.emit("price.created", price.to_dict(), at=ctx.now_int, request=ctx.cause())
        return self.render_price(price, expand)

    def retrieve_price(self, ctx: ApiContext, price_id: str) -> dict[str, Any]:
        """``GET /v1/prices/{id}`` (``expand[]=product``)."""
        expand = expand_paths(ctx.params, frozenset({"product"}))
        reject_unknown(ctx.params, {"expand"})
        return self.render_price(self.price(price_id, "price"), expand)

    def update_price(self, ctx: ApiContext, price_id: str) -> dict[str, Any]:
        """``POST /v1/prices/{id}``: only ``active``, ``nickname``, ``lookup_key`` and ``metadata`` change."""
        params = ctx.params
        reject_unknown(params, PRICE_UPDATE)
        expand = expand_paths(params, frozenset({"product"}))
        price = self.price(price_id, "price")
        before = price.to_dict()
        if (active := opt_bool(params, "active")) is not None:
            price.active = active
        if "nickname" in params:
            price.nickname = opt_str(params, "nickname")
        if "lookup_key" in params:
            price.lookup_key = self._lookup_key(params, price.id)
        if "metadata" in params:
            price.metadata = updated_metadata(price.metadata, params)
        self._emit_updated("price.updated", before, price.to_dict(), ctx)
        return self.render_price(price, expand)

    def list_prices(self, ctx: ApiContext) -> dict[str, Any]:
        """``GET /v1/prices`` (``lookup_keys[]``, ``active``, ``product``, ``type``, ``currency``, ``recurring``)."""
        params = ctx.params
        reject_unknown(params, PRICE_LIST)
        expand = expand_paths(params, frozenset({"product"}), in_list=True)
        lookup_keys = str_list(params, "lookup_keys")
        if len(lookup_keys) > MAX_LOOKUP_KEYS:
            raise invalid_request(f"You can pass at most {MAX_LOOKUP_KEYS} lookup keys.", "lookup_keys")
        active = opt_bool(params, "active")
        product = opt_str(params, "product")
        kind = opt_enum(params, "type", ["one_time", "recurring"])
        currency = opt_str(params, "currency")
        recurring = opt_dict(params, "recurring") or {}
        interval = opt_enum(recurring, "interval", list(INTERVALS), "recurring[interval]")
        in_range = created_filter(params)
        prices = [
            p
            for p in reversed(self._state.store.prices.values())
            if (not lookup_keys or p.lookup_key in lookup_keys)
            and (active is None or p.active == active)
            and (product is None or p.product == product)
            and (kind is None or p.type == kind)
            and (currency is None or p.currency == currency.lower())
            and (interval is None or (p.recurring is not None and p.recurring.interval == interval))
            and in_range(p.created)
        ]
        return paginate(
            prices,
            id_of=lambda p: p.id,
            render=lambda p: self.render_price(p, expand),
            params=params,
            url="/v1/prices",
            kind="price",
        )

    # --- shared -----------------------------------------------------------------------------------

    def product(self, product_id: str, param: str, *, status: int = 404) -> Product:
        """A product, or ``No such product``."""
        product = self._state.store.products.get(product_id)
        if product is None:
            raise resource_missing("product", product_id, param, status=status)
        return product

    def price(self, price_id: str, param: str, *, status: int = 404) -> Price:
        """A price, or ``No such price``."""
        price = self._state.store.prices.get(price_id)
        if price is None:
            raise resource_missing("price", price_id, param, status=status)
        return price

    def render_price(self, price: Price, expand: list[str]) -> dict[str, Any]:
        """A price, with its product expanded on request."""
        obj = price.to_dict()
        if "product" in expand:
            product = self._state.store.products.get(price.product)
            obj["product"] = product.to_dict() if product is not None else price.product
        return obj

    def inline_price(self, data: dict[str, Any], prefix: str, at: int) -> tuple[Price, Product | None]:
        """A ``price_data`` hash as a new inactive price (and a new product for ``product_data``).

        Nothing is stored: the caller stores both once the whole request has validated.
        """
        reject_unknown(data, INLINE_PRICE_PARAMS, prefix)
        exclusive(data, "product", "product_data", prefix)
        product_id = opt_str(data, "product", f"{prefix}[product]")
        product: Product | None = None
        if product_id is not None:
            self.product(product_id, f"{prefix}[product]", status=400)
        else:
            product_data = opt_dict(data, "product_data", f"{prefix}[product_data]")
            if product_data is None:
                raise invalid_request(
                    "You must specify either `product` or `product_data` when creating a price.",
                    f"{prefix}[product_data]",
                )
            product = self._product_from(product_data, f"{prefix}[product_data]", at)
            product.active = True
            product_id = product.id
        price = self._price_from(data, prefix, product_id, at, inline=True)
        price.active = False
        return price, product

    def store_inline(self, price: Price, product: Product | None) -> None:
        """Keep an inline price (and its new product) once the request that made it succeeded."""
        if product is not None:
            self._state.store.products[product.id] = product
        self._state.store.prices[price.id] = price

    def _product_from(self, data: dict[str, Any], prefix: str, at: int) -> Product:
        reject_unknown(data, PRODUCT_DATA_PARAMS | {"active", "statement_descriptor", "id"}, prefix)
        return Product(
            id=ids.new_id("prod_", 14),
            name=req_str(data, "name", f"{prefix}[name]"),
            created=at,
            description=opt_str(data, "description", f"{prefix}[description]"),
            metadata=metadata(data, "metadata", f"{prefix}[metadata]"),
            unit_label=opt_str(data, "unit_label", f"{prefix}[unit_label]"),
        )

    def _price_from(self, data: dict[str, Any], prefix: str | None, product_id: str, at: int, *, inline: bool) -> Price:
        def name(key: str) -> str:
            return f"{prefix}[{key}]" if prefix else key

        currency = req_str(data, "currency", name("currency")).lower()
        if not _CURRENCY.fullmatch(currency):
            raise invalid_request(f"Invalid currency: {currency}.", name("currency"))
        exclusive(data, "unit_amount", "unit_amount_decimal", prefix)
        unit_amount = opt_int(data, "unit_amount", name("unit_amount"), minimum=0)
        if unit_amount is not None:
            unit_decimal = str(unit_amount)
        else:
            raw = opt_str(data, "unit_amount_decimal", name("unit_amount_decimal"))
            if raw is None:
                raise missing_param(name("unit_amount"))
            try:
                value = decimal.Decimal(raw)
            except decimal.InvalidOperation:
                raise invalid_request(f"Invalid decimal: {raw}", name("unit_amount_decimal")) from None
            if not value.is_finite() or value < 0:
                raise invalid_request("This value must be greater than or equal to 0.", name("unit_amount_decimal"))
            unit_amount = int(value.to_integral_value(rounding=decimal.ROUND_HALF_EVEN))
            unit_decimal = format(value.normalize(), "f")
        recurring = self._recurring(opt_dict(data, "recurring", name("recurring")), name("recurring"))
        return Price(
            id=ids.new_id("price_1", 23),
            product=product_id,
            currency=currency,
            unit_amount=unit_amount,
            unit_amount_decimal=unit_decimal,
            created=at,
            recurring=recurring,
            tax_behavior=opt_enum(data, "tax_behavior", TAX_BEHAVIORS, name("tax_behavior")) or "unspecified",
        )

    def _recurring(self, data: dict[str, Any] | None, prefix: str) -> Recurring | None:
        if data is None:
            return None
        reject_unknown(data, RECURRING_PARAMS, prefix)
        interval = opt_enum(data, "interval", list(INTERVALS), f"{prefix}[interval]")
        if interval is None:
            raise missing_param(f"{prefix}[interval]")
        count = opt_int(data, "interval_count", f"{prefix}[interval_count]", minimum=1) or 1
        if count > MAX_INTERVALS[interval]:
            raise invalid_request(
                "The maximum billing frequency is 3 years (for example `interval=year` with `interval_count=3`).",
                f"{prefix}[interval_count]",
            )
        if opt_str(data, "usage_type", f"{prefix}[usage_type]") not in (None, "licensed"):
            raise invalid_request(
                "The Stripe stand-in only models licensed (non-metered) prices.", f"{prefix}[usage_type]"
            )
        return Recurring(interval, count)

    def _lookup_key(self, params: dict[str, Any], price_id: str) -> str | None:
        key = opt_str(params, "lookup_key")
        if key is None:
            return None
        if len(key) > 200:
            raise invalid_request("Lookup keys can be at most 200 characters long.", "lookup_key")
        transfer = opt_bool(params, "transfer_lookup_key") is True
        for other in self._state.store.prices.values():
            if other.id != price_id and other.lookup_key == key:
                if not transfer:
                    raise invalid_request(f"A price (`{other.id}`) already uses that lookup key.", "lookup_key")
                other.lookup_key = None
        return key

    def _emit_updated(self, event_type: str, before: dict[str, Any], after: dict[str, Any], ctx: ApiContext) -> None:
        previous = diff(before, after)
        previous.pop("updated", None)
        if previous:
            self._state.emit(event_type, after, at=ctx.now_int, request=ctx.cause(), previous=previous)
