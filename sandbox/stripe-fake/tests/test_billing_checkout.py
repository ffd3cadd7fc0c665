"""Checkout ``mode=subscription``: scenarios A and A′ of the reference's emission table, and refusals."""

from __future__ import annotations

from typing import Any

import pytest
import stripe
from stripe_fake_support import DAY, START, BillingKit

from stripe_fake.testing import FakeStripeControl, WebhookReceiver

pytestmark = pytest.mark.contract

SECRET = "whsec_billing_checkout"
SCENARIO_A = [
    "customer.subscription.created",
    "invoice.created",
    "invoice.finalized",
    "invoice.paid",
    "invoice.payment_succeeded",
    "invoice_payment.paid",
    "customer.subscription.updated",
    "checkout.session.completed",
]


def test_scenario_a_existing_customer_on_a_clock(billing: BillingKit, control: FakeStripeControl) -> None:
    """A: the order of §11, the session's ids, metadata inheritance and the clock inheritance."""
    client = billing.client
    price = billing.price(1500)
    clock = billing.clock()
    customer = billing.customer(clock)
    session = client.v1.checkout.sessions.create(billing.session_params(price, customer))
    assert (session.mode, session.status, session.payment_status) == ("subscription", "open", "unpaid")
    assert session.subscription is None and session.customer == customer and session.url is None
    assert session.client_secret is not None and session.amount_total == 1500

    mark = billing.mark()
    paid = control.pay(session.id, payment_method="pm_card_visa")
    assert paid["subscription"]["status"] == "active"
    assert billing.types_since(mark) == SCENARIO_A
    events = billing.events_since(mark)
    created = events[0]["data"]["object"]
    assert created["status"] == "incomplete" and created["test_clock"] == clock
    updated = events[6]["data"]
    assert updated["object"]["status"] == "active"
    assert updated["previous_attributes"] == {"status": "incomplete"}
    assert all(e["created"] == START for e in events[:7]), "billing events carry the clock's simulated time"
    assert all(e["request"]["id"] is None for e in events)

    done = client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["subscription", "invoice"]})
    assert (done.status, done.payment_status) == ("complete", "paid")
    assert done.payment_intent is None
    sub = done.subscription
    invoice = done.invoice
    assert isinstance(sub, stripe.Subscription) and isinstance(invoice, stripe.Invoice)
    assert sub.customer == customer and sub.test_clock == clock and sub.status == "active"
    assert sub.metadata.to_dict() == {"user_id": "42"}
    assert sub.latest_invoice == invoice.id
    item = sub.items.data[0]
    assert (item.current_period_start, item.current_period_end) == (START, START + 31 * DAY)
    assert item.price.id == price and item.quantity == 1
    assert (sub.cancel_at, sub.cancel_at_period_end, sub.canceled_at, sub.ended_at) == (None, False, None, None)
    assert sub.collection_method == "charge_automatically" and sub.currency == "eur"
    assert sub.start_date == START and sub.created == START

    assert (invoice.status, invoice.billing_reason, invoice.amount_paid, invoice.amount_due) == (
        "paid",
        "subscription_create",
        1500,
        1500,
    )
    assert invoice.parent is not None and invoice.parent.subscription_details is not None
    assert invoice.parent.subscription_details.subscription == sub.id
    assert invoice.parent.subscription_details.metadata is not None
    assert invoice.parent.subscription_details.metadata.to_dict() == {"user_id": "42"}
    for removed in ("subscription", "paid", "payment_intent", "payments"):
        assert removed not in invoice, f"basil removed invoice.{removed} (payments is includable only)"
    line = invoice.lines.data[0]
    assert (line.period.start, line.period.end) == (START, START + 31 * DAY)
    assert line.parent is not None and line.parent.subscription_item_details is not None
    assert line.parent.subscription_item_details.subscription_item == item.id
    assert line.parent.subscription_item_details.proration is False
    assert invoice.test_clock == clock and invoice.number is not None


def test_scenario_a_checkout_creates_the_customer(
    billing: BillingKit, control: FakeStripeControl, receiver: WebhookReceiver
) -> None:
    """A with ``customer_email``: ``customer.created`` comes first; deliveries verify with the SDK."""
    control.add_endpoint(receiver.url, SECRET)
    price = billing.price(900)
    session = billing.client.v1.checkout.sessions.create(billing.session_params(price))
    control.pay(session.id, email="new@example.test")
    assert control.event_types()[-9:] == ["customer.created", *SCENARIO_A]

    deliveries = receiver.wait_for(len(control.events()))
    verified = [stripe.Webhook.construct_event(r.body, r.headers["stripe-signature"], SECRET) for r in deliveries]
    completed = next(e for e in verified if e.type == "checkout.session.completed")
    obj: Any = completed.data.object
    assert obj.mode == "subscription" and obj.payment_status == "paid"
    assert obj.subscription.startswith("sub_") and obj.customer.startswith("cus_") and obj.invoice.startswith("in_")
    paid = next(e for e in verified if e.type == "invoice.paid")
    assert isinstance(paid.data.object, stripe.Invoice)
    assert paid.data.object.parent.subscription_details.subscription == obj.subscription  # type: ignore[union-attr]
    customer = billing.client.v1.customers.retrieve(obj.customer)
    assert customer.email == "new@example.test" and customer.test_clock is None
    assert customer.invoice_settings is not None
    assert str(customer.invoice_settings.default_payment_method).startswith("pm_")


def test_scenario_a_prime_trial(billing: BillingKit, control: FakeStripeControl) -> None:
    """A′: trialing, a $0 invoice paid at once, ``no_payment_required``; B with ``trialing`` at trial end."""
    price = billing.price(1500)
    clock = billing.clock()
    customer = billing.customer(clock)
    params = billing.session_params(price, customer, subscription_data={"trial_period_days": 14})
    session = billing.client.v1.checkout.sessions.create(params)
    assert session.amount_total == 0
    mark = billing.mark()
    control.pay(session.id)
    assert billing.types_since(mark) == [
        "customer.subscription.created",
        "invoice.created",
        "invoice.finalized",
        "invoice.paid",
        "invoice.payment_succeeded",
        "checkout.session.completed",
    ]
    done = billing.client.v1.checkout.sessions.retrieve(session.id)
    assert done.payment_status == "no_payment_required"
    sub = billing.client.v1.subscriptions.retrieve(str(done.subscription))
    assert sub.status == "trialing" and (sub.trial_start, sub.trial_end) == (START, START + 14 * DAY)
    invoice = billing.client.v1.invoices.retrieve(str(sub.latest_invoice))
    assert (invoice.amount_due, invoice.amount_paid, invoice.status) == (0, 0, "paid")
    assert invoice.lines.data[0].description == "Trial period for Game server Pro"

    mark = billing.mark()
    billing.advance(clock, START + 11 * DAY)
    assert billing.types_since(mark) == ["customer.subscription.trial_will_end"]
    mark = billing.mark()
    billing.advance(clock, START + 14 * DAY + 2 * 3600)
    assert billing.types_since(mark) == [
        "customer.subscription.updated",
        "invoice.created",
        "invoice.finalized",
        "invoice.paid",
        "invoice.payment_succeeded",
        "invoice_payment.paid",
    ]
    trial_end = billing.events_since(mark)[0]["data"]
    assert trial_end["object"]["status"] == "active"
    assert trial_end["previous_attributes"]["status"] == "trialing"
    assert set(trial_end["previous_attributes"]) == {"status", "items", "latest_invoice"}


def test_inline_recurring_price_data_and_one_time_item(billing: BillingKit, control: FakeStripeControl) -> None:
    """``price_data`` with ``recurring`` creates the price; a one-time item is billed on the first invoice only."""
    client = billing.client
    setup = client.v1.prices.create(
        {"currency": "eur", "unit_amount": 500, "product_data": {"name": "Setup fee"}}  # one-time
    )
    params = billing.session_params("unused")
    params["line_items"] = [
        {
            "price_data": {
                "currency": "eur",
                "unit_amount": 2500,
                "product_data": {"name": "Modded server"},
                "recurring": {"interval": "month", "interval_count": 1},
            },
            "quantity": 2,
        },
        {"price": setup.id, "quantity": 1},
    ]
    session = client.v1.checkout.sessions.create(params)
    assert session.amount_total == 5500
    items = client.v1.checkout.sessions.line_items.list(session.id)
    recurring_price = items.data[0].price
    assert recurring_price is not None and recurring_price.recurring is not None
    assert recurring_price.recurring.interval == "month" and recurring_price.id.startswith("price_")
    control.pay(session.id)
    sub = client.v1.subscriptions.retrieve(str(client.v1.checkout.sessions.retrieve(session.id).subscription))
    assert [(i.price.id, i.quantity) for i in sub.items.data] == [(recurring_price.id, 2)]
    invoice = client.v1.invoices.retrieve(str(sub.latest_invoice))
    assert invoice.amount_paid == 5500
    kinds = sorted(line.parent.type for line in invoice.lines.data if line.parent is not None)
    assert kinds == ["invoice_item_details", "subscription_item_details"]


def test_declined_card_leaves_session_open(billing: BillingKit, control: FakeStripeControl) -> None:
    """A card that cannot be charged is refused on the page: nothing is created or emitted."""
    price = billing.price()
    session = billing.client.v1.checkout.sessions.create(billing.session_params(price))
    mark = billing.mark()
    for card in ("pm_card_chargeCustomerFail", "pm_card_visa_chargeDeclined"):
        answer = control.pay(session.id, payment_method=card)
        assert answer["status"] == "open" and answer["subscription"] is None
    assert billing.types_since(mark) == []
    assert billing.client.v1.subscriptions.list().data == []


@pytest.mark.parametrize(
    ("extra", "param", "message"),
    [
        (
            {"customer_creation": "always"},
            "customer_creation",
            "`customer_creation` can only be used in `payment` mode.",
        ),
        (
            {"invoice_creation": {"enabled": True}},
            "invoice_creation",
            "You can only enable invoice creation when `mode` is set to `payment`.",
        ),
        ({"payment_intent_data": {"metadata": {"a": "b"}}}, "payment_intent_data", "payment_intent_data"),
        ({"subscription_data": {"trial_period_days": 0}}, "subscription_data[trial_period_days]", "greater than"),
    ],
)
def test_subscription_mode_refusals(
    billing: BillingKit, control: FakeStripeControl, extra: dict[str, Any], param: str, message: str
) -> None:
    price = billing.price()
    params = billing.session_params(price)
    params.update(extra)
    with pytest.raises(stripe.InvalidRequestError) as info:
        billing.client.v1.checkout.sessions.create(params)
    assert info.value.http_status == 400 and info.value.param == param
    assert message in str(info.value.user_message)
    assert control.sessions() == []


def test_subscription_mode_price_errors(billing: BillingKit) -> None:
    """Unknown price, one-time only, unknown customer."""
    client = billing.client
    one_time = client.v1.prices.create({"currency": "eur", "unit_amount": 500, "product_data": {"name": "Once"}})
    cases: list[tuple[Any, str]] = [
        (billing.session_params("price_missing"), "line_items[0][price]"),
        (billing.session_params(one_time.id), "line_items"),
        (billing.session_params(billing.price(), "cus_missing"), "customer"),
    ]
    for params, param in cases:
        with pytest.raises(stripe.InvalidRequestError) as info:
            client.v1.checkout.sessions.create(params)
        assert info.value.param == param, info.value.user_message
