"""Renewals and dunning through test clocks: scenarios B, C and D, manual payment, the fake's own clock."""

from __future__ import annotations

import pytest
import stripe
from stripe_fake_support import DAY, START, BillingKit

from stripe_fake.testing import FakeStripeControl

pytestmark = pytest.mark.contract

HOUR = 3600
RENEWAL_OK = [
    "customer.subscription.updated",
    "invoice.created",
    "invoice.finalized",
    "invoice.paid",
    "invoice.payment_succeeded",
    "invoice_payment.paid",
]
RENEWAL_FAILS = [
    "customer.subscription.updated",
    "invoice.created",
    "invoice.finalized",
    "invoice.payment_failed",
    "customer.subscription.updated",
]
RECOVERED = ["invoice.paid", "invoice.payment_succeeded", "invoice_payment.paid", "customer.subscription.updated"]


def _on_clock(billing: BillingKit, amount: int = 1500) -> tuple[str, str, stripe.Subscription]:
    clock = billing.clock()
    customer = billing.customer(clock)
    return clock, customer, billing.subscribe(billing.price(amount), customer)


def test_three_monthly_renewals(billing: BillingKit) -> None:
    """B three times: calendar months from the anchor, draft at the period end, paid an hour later."""
    clock, _customer, sub = _on_clock(billing)
    expected_ends = [START + 31 * DAY, START + 59 * DAY, START + 90 * DAY]  # 15 Feb, 15 Mar, 15 Apr
    for index, end in enumerate(expected_ends):
        assert billing.period_end(sub.id) == end
        mark = billing.mark()
        ready = billing.advance(clock, end + 2 * HOUR)
        assert ready.frozen_time == end + 2 * HOUR
        assert billing.types_since(mark) == RENEWAL_OK
        events = billing.events_since(mark)
        rollover = events[0]["data"]
        assert set(rollover["previous_attributes"]) == {"items", "latest_invoice"}
        old_item = rollover["previous_attributes"]["items"]["data"][0]
        assert old_item["current_period_end"] == end
        assert rollover["object"]["items"]["data"][0]["current_period_start"] == end
        assert [e["created"] for e in events] == [end, end, end + HOUR, end + HOUR, end + HOUR, end + HOUR]
        assert all(e["request"]["id"] is None for e in events)
        draft = events[1]["data"]["object"]
        assert (draft["status"], draft["billing_reason"], draft["attempted"]) == ("draft", "subscription_cycle", False)
        invoice = billing.client.v1.invoices.retrieve(draft["id"], params={"expand": ["payments"]})
        assert (invoice.status, invoice.amount_paid, invoice.attempt_count) == ("paid", 1500, 1)
        assert invoice.status_transitions.paid_at == end + HOUR
        line = invoice.lines.data[0]
        assert line.period.start == end
        assert line.period.end == (expected_ends[index + 1] if index + 1 < 3 else START + 120 * DAY)
        assert invoice.period_end == end, "period_start/period_end bound the previous period"
        assert invoice.payments is not None
        payment = invoice.payments.data[0]
        assert (payment.status, payment.amount_paid, payment.payment.type) == ("paid", 1500, "payment_intent")
        listed = billing.client.v1.invoice_payments.list({"invoice": invoice.id})
        assert [p.id for p in listed.data] == [payment.id]
        intent = billing.client.v1.payment_intents.retrieve(str(payment.payment.payment_intent))
        assert intent.status == "succeeded" and intent.latest_charge is not None
        charge = billing.client.v1.charges.retrieve(str(intent.latest_charge))
        assert (charge.status, charge.amount, charge.refunded, charge.disputed) == ("succeeded", 1500, False, False)
    invoices = billing.client.v1.invoices.list({"subscription": sub.id})
    assert [i.billing_reason for i in invoices.data] == ["subscription_cycle"] * 3 + ["subscription_create"]
    assert billing.client.v1.subscriptions.retrieve(sub.id).latest_invoice == invoices.data[0].id


def test_failed_renewal_recovers_on_a_retry(billing: BillingKit, control: FakeStripeControl) -> None:
    """C: past_due on the first failure, another failure at T1, the retry at T2 succeeds after a card change."""
    clock, customer, sub = _on_clock(billing)
    control.use_payment_method(customer, "pm_card_chargeCustomerFail")
    end = billing.period_end(sub.id)
    first_failure = end + HOUR
    mark = billing.mark()
    billing.advance(clock, end + 2 * HOUR)
    assert billing.types_since(mark) == RENEWAL_FAILS
    events = billing.events_since(mark)
    failed = events[3]["data"]["object"]
    assert (failed["attempt_count"], failed["next_payment_attempt"]) == (1, first_failure + DAY)
    assert failed["status"] == "open" and failed["attempted"] is True
    past_due = events[4]["data"]
    assert past_due["object"]["status"] == "past_due" and past_due["previous_attributes"] == {"status": "active"}
    assert billing.client.v1.customers.retrieve(customer).delinquent is True

    mark = billing.mark()
    billing.advance(clock, first_failure + DAY + HOUR)
    [again] = billing.events_since(mark)
    assert again["type"] == "invoice.payment_failed"
    assert again["data"]["object"]["attempt_count"] == 2
    assert again["data"]["object"]["next_payment_attempt"] == first_failure + 3 * DAY

    # the customer fixes the card through the API: attach, then make it the default
    client = billing.client
    card = client.v1.payment_methods.attach("pm_card_visa", {"customer": customer})
    client.v1.customers.update(customer, {"invoice_settings": {"default_payment_method": card.id}})
    mark = billing.mark()
    billing.advance(clock, first_failure + 3 * DAY + HOUR)
    assert billing.types_since(mark) == RECOVERED
    active = billing.events_since(mark)[-1]["data"]
    assert active["object"]["status"] == "active" and active["previous_attributes"] == {"status": "past_due"}
    invoice = client.v1.invoices.retrieve(failed["id"])
    assert (invoice.status, invoice.attempt_count, invoice.next_payment_attempt) == ("paid", 3, None)
    assert client.v1.customers.retrieve(customer).delinquent is False


@pytest.mark.parametrize(
    ("subscription_action", "invoice_action", "tail", "status", "invoice_status"),
    [
        ("cancel", "open", ["customer.subscription.deleted"], "canceled", "open"),
        (
            "unpaid",
            "uncollectible",
            ["invoice.marked_uncollectible", "customer.subscription.updated"],
            "unpaid",
            "uncollectible",
        ),
        ("past_due", "open", [], "past_due", "open"),
        (
            "cancel",
            "uncollectible",
            ["invoice.marked_uncollectible", "customer.subscription.deleted"],
            "canceled",
            "uncollectible",
        ),
    ],
)
def test_retries_exhausted(
    billing: BillingKit,
    control: FakeStripeControl,
    subscription_action: str,
    invoice_action: str,
    tail: list[str],
    status: str,
    invoice_status: str,
) -> None:
    """D: the last ``payment_failed`` has no next attempt, then the configured terminal action."""
    control.billing_settings(subscription_action=subscription_action, invoice_action=invoice_action)
    clock, customer, sub = _on_clock(billing)
    control.use_payment_method(customer, "pm_card_chargeCustomerFail")
    end = billing.period_end(sub.id)
    mark = billing.mark()
    billing.advance(clock, end + HOUR + 5 * DAY + HOUR)
    failures = ["invoice.payment_failed"] * 3
    assert billing.types_since(mark) == [*RENEWAL_FAILS, *failures, *tail]
    events = billing.events_since(mark)
    last_failure = events[len(RENEWAL_FAILS) + 2]["data"]["object"]
    assert (last_failure["attempt_count"], last_failure["next_payment_attempt"]) == (4, None)
    latest = billing.client.v1.subscriptions.retrieve(sub.id)
    assert latest.status == status
    if status == "canceled":
        assert latest.cancellation_details is not None
        assert latest.cancellation_details.reason == "payment_failed"
        assert latest.ended_at == end + HOUR + 5 * DAY
    invoice = billing.client.v1.invoices.retrieve(last_failure["id"])
    assert invoice.status == invoice_status
    if invoice_status == "uncollectible":
        assert invoice.status_details is not None and invoice.status_details.uncollectible is not None
        assert invoice.status_details.uncollectible.reason == "max_payment_attempts"

    # nothing more happens later: no automatic collection is left
    mark = billing.mark()
    billing.advance(clock, end + 20 * DAY)
    assert billing.types_since(mark) == []


@pytest.mark.parametrize("subscription_action", ["unpaid", "cancel"])
def test_pay_the_open_invoice_after_exhaustion(
    billing: BillingKit, control: FakeStripeControl, subscription_action: str
) -> None:
    """Paying by hand after the retries: paid; an unpaid subscription becomes active, a canceled one stays so."""
    control.billing_settings(retry_days=[1], subscription_action=subscription_action)
    clock, customer, sub = _on_clock(billing)
    control.use_payment_method(customer, "pm_card_chargeCustomerFail")
    end = billing.period_end(sub.id)
    billing.advance(clock, end + 3 * DAY)
    open_invoice = billing.client.v1.invoices.list({"subscription": sub.id, "status": "open"}).data[0]
    assert open_invoice.attempt_count == 2 and open_invoice.next_payment_attempt is None

    mark = billing.mark()
    paid = billing.client.v1.invoices.pay(open_invoice.id, {"payment_method": "pm_card_visa"})
    assert (paid.status, paid.amount_paid, paid.amount_remaining, paid.attempt_count) == ("paid", 1500, 0, 2)
    expected = ["invoice.paid", "invoice.payment_succeeded", "invoice_payment.paid"]
    if subscription_action == "unpaid":
        expected.append("customer.subscription.updated")
    assert billing.types_since(mark) == expected
    events = billing.events_since(mark)
    assert all(e["request"]["id"] is not None for e in events), "API-caused events name their request"
    final = billing.client.v1.subscriptions.retrieve(sub.id).status
    assert final == ("active" if subscription_action == "unpaid" else "canceled")
    if subscription_action == "unpaid":
        assert events[-1]["data"]["previous_attributes"] == {"status": "unpaid"}


def test_manual_pay_decline_and_already_paid(billing: BillingKit, control: FakeStripeControl) -> None:
    """A declined ``pay`` is a 402 CardError plus ``invoice.payment_failed``; the schedule does not move."""
    clock, customer, sub = _on_clock(billing)
    control.use_payment_method(customer, "pm_card_chargeCustomerFail")
    end = billing.period_end(sub.id)
    billing.advance(clock, end + 2 * HOUR)
    invoice = billing.client.v1.invoices.list({"subscription": sub.id, "status": "open"}).data[0]
    mark = billing.mark()
    with pytest.raises(stripe.CardError) as info:
        billing.client.v1.invoices.pay(invoice.id)
    assert info.value.http_status == 402 and info.value.code == "card_declined"
    assert info.value.error is not None and info.value.error.decline_code == "generic_decline"
    assert billing.types_since(mark) == ["invoice.payment_failed"]
    after = billing.client.v1.invoices.retrieve(invoice.id)
    assert (after.attempt_count, after.next_payment_attempt) == (1, end + HOUR + DAY)

    control.use_payment_method(customer, "pm_card_visa")
    billing.client.v1.invoices.pay(invoice.id)
    with pytest.raises(stripe.InvalidRequestError) as already:
        billing.client.v1.invoices.pay(invoice.id)
    assert already.value.http_status == 400 and already.value.user_message == "Invoice is already paid"
    assert billing.client.v1.subscriptions.retrieve(sub.id).status == "active"


def test_renewal_on_the_fake_clock(billing: BillingKit, control: FakeStripeControl) -> None:
    """A subscription without a test clock renews when ``POST /_fake/clock/advance`` passes its period end."""
    sub = billing.subscribe(billing.price())
    end = billing.period_end(sub.id)
    mark = billing.mark()
    moved = control.advance(end - control.now() + 2 * HOUR)
    assert moved["billing_steps"] == 2
    assert billing.types_since(mark) == RENEWAL_OK
    assert billing.events_since(mark)[0]["created"] == end
    assert billing.period_end(sub.id) > end
