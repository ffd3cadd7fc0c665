"""Subscription updates and cancellation: scenarios E and F, plan changes with prorations, errors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import stripe
from stripe_fake_support import DAY, START, BillingKit

from stripe_fake.testing import FakeStripeControl

pytestmark = pytest.mark.contract

HOUR = 3600


def _on_clock(billing: BillingKit, amount: int = 1500) -> tuple[str, str, stripe.Subscription]:
    clock = billing.clock()
    customer = billing.customer(clock)
    return clock, customer, billing.subscribe(billing.price(amount), customer)


def test_cancel_at_period_end_then_undo_then_again(billing: BillingKit) -> None:
    """E: the flag update, its undo, and at the period end ``deleted`` without any invoice."""
    clock, _customer, sub = _on_clock(billing)
    client = billing.client
    end = billing.period_end(sub.id)
    billing.advance(clock, START + 5 * DAY)

    mark = billing.mark()
    scheduled = client.v1.subscriptions.update(sub.id, {"cancel_at_period_end": True})
    assert (scheduled.status, scheduled.cancel_at_period_end, scheduled.cancel_at) == ("active", True, end)
    assert scheduled.canceled_at == START + 5 * DAY
    [update] = billing.events_since(mark)
    assert update["type"] == "customer.subscription.updated"
    previous = update["data"]["previous_attributes"]
    assert {k: previous[k] for k in ("cancel_at_period_end", "cancel_at", "canceled_at")} == {
        "cancel_at_period_end": False,
        "cancel_at": None,
        "canceled_at": None,
    }
    assert update["request"]["id"] is not None

    mark = billing.mark()
    kept = client.v1.subscriptions.update(sub.id, {"cancel_at_period_end": False})
    assert (kept.cancel_at_period_end, kept.cancel_at, kept.canceled_at) == (False, None, None)
    [undo] = billing.events_since(mark)
    assert undo["data"]["previous_attributes"]["cancel_at_period_end"] is True

    client.v1.subscriptions.update(sub.id, {"cancel_at_period_end": True})
    mark = billing.mark()
    billing.advance(clock, end + 2 * HOUR)
    assert billing.types_since(mark) == ["customer.subscription.deleted"]
    deleted = billing.events_since(mark)[0]
    assert deleted["created"] == end and deleted["request"]["id"] is None
    ended = client.v1.subscriptions.retrieve(sub.id)
    assert (ended.status, ended.ended_at) == ("canceled", end)
    assert ended.cancellation_details is not None
    assert ended.cancellation_details.reason == "cancellation_requested"
    assert len(client.v1.invoices.list({"subscription": sub.id}).data) == 1
    assert client.v1.subscriptions.list({"customer": str(ended.customer)}).data == []
    assert [s.id for s in client.v1.subscriptions.list({"status": "canceled"}).data] == [sub.id]


def test_cancel_at_timestamp_and_unset(billing: BillingKit) -> None:
    """``cancel_at`` as a timestamp mid-period ends the subscription then; ``""`` unsets it."""
    clock, _customer, sub = _on_clock(billing)
    client = billing.client
    set_ = client.v1.subscriptions.update(sub.id, {"cancel_at": START + 10 * DAY})
    assert (set_.cancel_at, set_.cancel_at_period_end) == (START + 10 * DAY, False)
    unset = client.v1.subscriptions.update(sub.id, {"cancel_at": ""})
    assert unset.cancel_at is None and unset.canceled_at is None
    client.v1.subscriptions.update(sub.id, {"cancel_at": START + 10 * DAY})
    mark = billing.mark()
    billing.advance(clock, START + 11 * DAY)
    assert billing.types_since(mark) == ["customer.subscription.deleted"]
    assert client.v1.subscriptions.retrieve(sub.id).ended_at == START + 10 * DAY
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.subscriptions.update(sub.id, {"cancel_at": START})
    assert info.value.user_message == "A canceled subscription can only update its cancellation_details and metadata."


def test_immediate_cancel_and_canceled_subscription_errors(billing: BillingKit) -> None:
    """F, then: 404 on a second cancel, 400 on updating it, but metadata can still change."""
    _clock, _customer, sub = _on_clock(billing)
    client = billing.client
    mark = billing.mark()
    canceled = client.v1.subscriptions.cancel(sub.id, {"cancellation_details": {"comment": "too laggy"}})
    assert (canceled.status, canceled.canceled_at, canceled.ended_at) == ("canceled", START, START)
    assert canceled.cancellation_details is not None
    assert (canceled.cancellation_details.reason, canceled.cancellation_details.comment) == (
        "cancellation_requested",
        "too laggy",
    )
    assert billing.types_since(mark) == ["customer.subscription.deleted"]

    with pytest.raises(stripe.InvalidRequestError) as again:
        client.v1.subscriptions.cancel(sub.id)
    assert (again.value.http_status, again.value.code) == (404, "resource_missing")
    assert again.value.user_message == f"No such subscription: '{sub.id}'"
    with pytest.raises(stripe.InvalidRequestError) as update:
        client.v1.subscriptions.update(sub.id, {"cancel_at_period_end": True})
    assert update.value.http_status == 400
    assert update.value.user_message == "A canceled subscription can only update its cancellation_details and metadata."
    tagged = client.v1.subscriptions.update(sub.id, {"metadata": {"archived": "yes"}})
    assert tagged.metadata.to_dict() == {"user_id": "42", "archived": "yes"}
    assert client.v1.subscriptions.retrieve(sub.id).status == "canceled", "retrieve works after cancel"


def test_immediate_cancel_with_proration_and_final_invoice(billing: BillingKit) -> None:
    """F with ``invoice_now`` and ``prorate``: a credit for the unused time on a final invoice."""
    clock, customer, sub = _on_clock(billing, 3100)
    billing.advance(clock, START + 10 * DAY)
    mark = billing.mark()
    billing.client.v1.subscriptions.cancel(sub.id, {"invoice_now": True, "prorate": True})
    assert billing.types_since(mark) == [
        "customer.subscription.deleted",
        "invoice.created",
        "invoice.finalized",
        "invoice.paid",
        "invoice.payment_succeeded",
    ]
    final = billing.events_since(mark)[1]["data"]["object"]
    assert final["total"] == -2100 and final["amount_due"] == 0  # 21 of 31 days unused
    line = final["lines"]["data"][0]
    assert line["parent"]["subscription_item_details"]["proration"] is True
    assert line["description"].startswith("Unused time on Game server Pro after 25 Jan 2026")
    assert billing.client.v1.customers.retrieve(customer).balance == -2100


def test_plan_change_prorations_land_on_the_next_invoice(billing: BillingKit) -> None:
    """``create_prorations`` (default): credit and debit items, billed on the renewal invoice."""
    clock, _customer, sub = _on_clock(billing, 1500)
    pro = billing.price(3000, name="Game server Max")
    billing.advance(clock, START + 10 * DAY)
    item = sub.items.data[0]
    mark = billing.mark()
    changed = billing.client.v1.subscriptions.update(sub.id, {"items": [{"id": item.id, "price": pro}]})
    assert changed.items.data[0].price.id == pro and changed.items.data[0].id == item.id
    assert billing.types_since(mark) == ["customer.subscription.updated"]
    previous = billing.events_since(mark)[0]["data"]["previous_attributes"]
    assert previous["items"]["data"][0]["price"]["unit_amount"] == 1500
    assert len(billing.client.v1.invoices.list({"subscription": sub.id}).data) == 1

    end = billing.period_end(sub.id)
    billing.advance(clock, end + 2 * HOUR)
    renewal = billing.client.v1.invoices.list({"subscription": sub.id}).data[0]
    assert renewal.billing_reason == "subscription_cycle"
    amounts = sorted(
        (
            line.amount,
            bool(
                line.parent
                and line.parent.subscription_item_details
                and line.parent.subscription_item_details.proration
            ),
        )
        for line in renewal.lines.data
    )
    assert amounts == [(-1016, True), (2032, True), (3000, False)]  # 21/31 of 1500 and of 3000
    assert (renewal.total, renewal.amount_paid, renewal.status) == (4016, 4016, "paid")
    for line in renewal.lines.data:
        if line.parent and line.parent.subscription_item_details and line.parent.subscription_item_details.proration:
            assert (line.period.start, line.period.end) == (START + 10 * DAY, end)


def test_plan_change_always_invoice(billing: BillingKit, control: FakeStripeControl) -> None:
    """``always_invoice``: a ``subscription_update`` invoice now, charged at once (and failing → past_due)."""
    clock, customer, sub = _on_clock(billing, 1500)
    pro = billing.price(3000, name="Game server Max")
    billing.advance(clock, START + 10 * DAY)
    item = sub.items.data[0]
    mark = billing.mark()
    params: Any = {"items": [{"id": item.id, "price": pro}], "proration_behavior": "always_invoice"}
    changed = billing.client.v1.subscriptions.update(sub.id, params)
    assert billing.types_since(mark) == [
        "customer.subscription.updated",
        "invoice.created",
        "invoice.finalized",
        "invoice.paid",
        "invoice.payment_succeeded",
        "invoice_payment.paid",
    ]
    invoice = billing.client.v1.invoices.retrieve(str(changed.latest_invoice))
    assert (invoice.billing_reason, invoice.total, invoice.status) == ("subscription_update", 1016, "paid")
    previous = billing.events_since(mark)[0]["data"]["previous_attributes"]
    assert set(previous) == {"items", "latest_invoice"}

    # a failing upgrade with the default payment_behavior: the subscription goes past_due
    control.use_payment_method(customer, "pm_card_chargeCustomerFail")
    bigger = billing.price(6000, name="Game server Ultra")
    mark = billing.mark()
    billing.client.v1.subscriptions.update(
        sub.id, {"items": [{"id": item.id, "price": bigger}], "proration_behavior": "always_invoice"}
    )
    assert billing.types_since(mark)[-2:] == ["invoice.payment_failed", "customer.subscription.updated"]
    assert billing.client.v1.subscriptions.retrieve(sub.id).status == "past_due"


def test_error_if_incomplete_refuses_and_changes_nothing(billing: BillingKit, control: FakeStripeControl) -> None:
    clock, customer, sub = _on_clock(billing, 1500)
    pro = billing.price(3000, name="Game server Max")
    billing.advance(clock, START + 10 * DAY)
    control.use_payment_method(customer, "pm_card_chargeCustomerFail")
    mark = billing.mark()
    with pytest.raises(stripe.CardError) as info:
        billing.client.v1.subscriptions.update(
            sub.id,
            {
                "items": [{"id": sub.items.data[0].id, "price": pro}],
                "proration_behavior": "always_invoice",
                "payment_behavior": "error_if_incomplete",
            },
        )
    assert info.value.http_status == 402 and info.value.code == "card_declined"
    assert billing.types_since(mark) == []
    assert billing.client.v1.subscriptions.retrieve(sub.id).items.data[0].price.id != pro


def test_quantity_change_without_proration_and_item_errors(billing: BillingKit) -> None:
    _clock, _customer, sub = _on_clock(billing, 1500)
    client = billing.client
    item = sub.items.data[0]
    more = client.v1.subscriptions.update(
        sub.id, {"items": [{"id": item.id, "quantity": 3}], "proration_behavior": "none"}
    )
    assert more.items.data[0].quantity == 3
    assert client.v1.invoices.list({"subscription": sub.id}).data[0].billing_reason == "subscription_create"
    yearly = billing.price(15000, interval="year")
    cases: list[tuple[Any, str]] = [
        ({"items": [{"id": "si_missing", "quantity": 2}]}, "items[0][id]"),
        ({"items": [{"id": item.id, "price": "price_missing"}]}, "items[0][price]"),
        ({"items": [{"id": item.id, "price": yearly}]}, "items[0][price]"),
        ({"proration_behavior": "sometimes"}, "proration_behavior"),
    ]
    for params, param in cases:
        with pytest.raises(stripe.InvalidRequestError) as info:
            client.v1.subscriptions.update(sub.id, params)
        assert info.value.param == param, info.value.user_message


def test_unknown_ids_are_404(billing: BillingKit) -> None:
    client = billing.client
    calls: list[tuple[Callable[[], object], str]] = [
        (lambda: client.v1.subscriptions.retrieve("sub_missing"), "No such subscription: 'sub_missing'"),
        (lambda: client.v1.invoices.retrieve("in_missing"), "No such invoice: 'in_missing'"),
        (lambda: client.v1.customers.retrieve("cus_missing"), "No such customer: 'cus_missing'"),
        (lambda: client.v1.prices.retrieve("price_missing"), "No such price: 'price_missing'"),
        (lambda: client.v1.products.retrieve("prod_missing"), "No such product: 'prod_missing'"),
        (lambda: client.v1.charges.retrieve("ch_missing"), "No such charge: 'ch_missing'"),
        (lambda: client.v1.disputes.retrieve("dp_missing"), "No such dispute: 'dp_missing'"),
        (lambda: client.v1.invoices.pay("in_missing"), "No such invoice: 'in_missing'"),
        (lambda: client.v1.subscriptions.cancel("sub_missing"), "No such subscription: 'sub_missing'"),
        (lambda: client.v1.test_helpers.test_clocks.retrieve("clock_x"), "No such test_helpers.test_clock: 'clock_x'"),
    ]
    for call, message in calls:
        with pytest.raises(stripe.InvalidRequestError) as info:
            call()
        assert (info.value.http_status, info.value.code, info.value.user_message) == (404, "resource_missing", message)
