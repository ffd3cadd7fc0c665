"""Products, prices, customers and payment methods through the SDK."""

from __future__ import annotations

import decimal

import pytest
import stripe
from stripe_fake_support import START, BillingKit

from stripe_fake.testing import FakeStripeControl

pytestmark = pytest.mark.contract


def test_products_and_prices(billing: BillingKit, control: FakeStripeControl) -> None:
    client = billing.client
    product = client.v1.products.create({"name": "Game server", "metadata": {"tier": "pro"}})
    assert (product.object, product.active, product.name, product.default_price) == (
        "product",
        True,
        "Game server",
        None,
    )
    monthly = client.v1.prices.create(
        {
            "product": product.id,
            "currency": "EUR",
            "unit_amount": 1500,
            "recurring": {"interval": "month", "interval_count": 1},
            "lookup_key": "pro_monthly",
            "nickname": "Pro monthly",
        }
    )
    assert (monthly.type, monthly.currency, monthly.unit_amount, monthly.product) == (
        "recurring",
        "eur",
        1500,
        product.id,
    )
    assert monthly.unit_amount_decimal == decimal.Decimal("1500")
    assert monthly.recurring is not None
    assert (monthly.recurring.interval, monthly.recurring.interval_count) == ("month", 1)
    once = client.v1.prices.create({"product": product.id, "currency": "eur", "unit_amount": 500})
    assert once.type == "one_time" and once.recurring is None
    assert [e["type"] for e in control.events()] == ["product.created", "price.created", "price.created"]

    found = client.v1.prices.list({"lookup_keys": ["pro_monthly", "nope"]})
    assert [p.id for p in found.data] == [monthly.id]
    assert {p.id for p in client.v1.prices.list({"product": product.id}).data} == {monthly.id, once.id}
    assert [p.id for p in client.v1.prices.list({"type": "one_time"}).data] == [once.id]
    expanded = client.v1.prices.retrieve(monthly.id, {"expand": ["product"]})
    assert isinstance(expanded.product, stripe.Product) and expanded.product.name == "Game server"

    with pytest.raises(stripe.InvalidRequestError) as duplicate:
        client.v1.prices.create(
            {"product": product.id, "currency": "eur", "unit_amount": 1400, "lookup_key": "pro_monthly"}
        )
    assert duplicate.value.param == "lookup_key"
    moved = client.v1.prices.create(
        {
            "product": product.id,
            "currency": "eur",
            "unit_amount": 1400,
            "lookup_key": "pro_monthly",
            "transfer_lookup_key": True,
            "recurring": {"interval": "month"},
        }
    )
    assert [p.id for p in client.v1.prices.list({"lookup_keys": ["pro_monthly"]}).data] == [moved.id]

    archived = client.v1.prices.update(monthly.id, {"active": False})
    assert archived.active is False
    assert monthly.id not in [p.id for p in client.v1.prices.list({"active": True}).data]
    renamed = client.v1.products.update(product.id, {"name": "Game server+", "default_price": moved.id})
    assert (renamed.name, renamed.default_price) == ("Game server+", moved.id)
    assert [p.id for p in client.v1.products.list({"active": True}).data] == [product.id]

    with_inline_product = client.v1.prices.create(
        {"currency": "eur", "unit_amount": 100, "product_data": {"name": "Backup slot"}}
    )
    assert client.v1.products.retrieve(str(with_inline_product.product)).name == "Backup slot"


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"currency": "eur", "unit_amount": 100}, "product"),
        ({"product": "prod_missing", "currency": "eur", "unit_amount": 100}, "product"),
        (
            {"product_data": {"name": "x"}, "currency": "eur", "unit_amount": 100, "recurring": {"interval": "hour"}},
            "recurring[interval]",
        ),
        ({"product_data": {"name": "x"}, "currency": "eur", "unit_amount": -1}, "unit_amount"),
        ({"product_data": {"name": "x"}, "unit_amount": 1}, "currency"),
    ],
)
def test_price_validation(billing: BillingKit, params: dict[str, object], param: str) -> None:
    with pytest.raises(stripe.InvalidRequestError) as info:
        billing.client.v1.prices.create(params)  # type: ignore[arg-type]
    assert (info.value.http_status, info.value.param) == (400, param)


def test_customers(billing: BillingKit, control: FakeStripeControl) -> None:
    client = billing.client
    clock = billing.clock()
    customer = client.v1.customers.create(
        {"email": "ada@example.test", "name": "Ada", "metadata": {"user_id": "7"}, "test_clock": clock}
    )
    assert (customer.object, customer.test_clock, customer.created, customer.balance) == (
        "customer",
        clock,
        START,
        0,
    )
    assert customer.invoice_settings is not None and customer.invoice_settings.default_payment_method is None
    assert customer.delinquent is False

    mark = billing.mark()
    changed = client.v1.customers.update(customer.id, {"name": "Ada L.", "metadata": {"user_id": "", "team": "x"}})
    assert changed.name == "Ada L." and changed.metadata is not None and changed.metadata.to_dict() == {"team": "x"}
    [updated] = billing.events_since(mark)
    assert updated["type"] == "customer.updated"
    assert updated["data"]["previous_attributes"] == {"name": "Ada", "metadata": {"user_id": "7", "team": None}}

    assert [c.id for c in client.v1.customers.list({"email": "ada@example.test"}).data] == [customer.id]
    assert [c.id for c in client.v1.customers.list({"test_clock": clock}).data] == [customer.id]
    with pytest.raises(stripe.InvalidRequestError) as bad_clock:
        client.v1.customers.create({"test_clock": "clock_missing"})
    assert bad_clock.value.param == "test_clock"


def test_payment_methods_and_the_default(billing: BillingKit) -> None:
    client = billing.client
    customer = billing.customer()
    card = client.v1.payment_methods.attach("pm_card_visa", {"customer": customer})
    assert card.id.startswith("pm_") and card.id != "pm_card_visa"
    assert (card.type, card.customer) == ("card", customer)
    assert card.card is not None and (card.card.brand, card.card.last4) == ("visa", "4242")
    failing = client.v1.payment_methods.attach("pm_card_chargeCustomerFail", {"customer": customer})
    assert failing.card is not None and failing.card.last4 == "0341"

    with pytest.raises(stripe.CardError) as declined:
        client.v1.payment_methods.attach("pm_card_visa_chargeDeclined", {"customer": customer})
    assert declined.value.http_status == 402 and declined.value.code == "card_declined"
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        client.v1.payment_methods.attach("pm_nope", {"customer": customer})
    assert unknown.value.http_status == 404

    other = billing.customer(email="other@example.test")
    with pytest.raises(stripe.InvalidRequestError) as not_attached:
        client.v1.customers.update(other, {"invoice_settings": {"default_payment_method": card.id}})
    assert not_attached.value.param == "invoice_settings[default_payment_method]"
    updated = client.v1.customers.update(customer, {"invoice_settings": {"default_payment_method": card.id}})
    assert updated.invoice_settings is not None and updated.invoice_settings.default_payment_method == card.id
    listed = client.v1.customers.payment_methods.list(customer)
    assert {pm.id for pm in listed.data} == {card.id, failing.id}


def test_deleting_a_customer_cancels_its_subscriptions(billing: BillingKit) -> None:
    customer = billing.customer()
    sub = billing.subscribe(billing.price(), customer)
    mark = billing.mark()
    deleted = billing.client.v1.customers.delete(customer)
    assert deleted.deleted is True
    assert billing.types_since(mark) == ["customer.subscription.deleted", "customer.deleted"]
    assert billing.client.v1.subscriptions.retrieve(sub.id).status == "canceled"
