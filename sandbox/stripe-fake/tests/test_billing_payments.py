"""Refunds and disputes on invoice charges (scenarios G, H, H′), and the billing portal."""

from __future__ import annotations

import pytest
import stripe
from stripe_fake_support import DAY, START, BillingKit

from stripe_fake.testing import FakeStripeControl, wait_until

pytestmark = pytest.mark.contract

HOUR = 3600


def _paid_charge(billing: BillingKit, payment_method: str | None = None) -> tuple[stripe.Subscription, stripe.Charge]:
    clock = billing.clock()
    customer = billing.customer(clock)
    sub = billing.subscribe(billing.price(1500), customer, payment_method=payment_method)
    invoice = billing.client.v1.invoices.retrieve(str(sub.latest_invoice), params={"expand": ["payments"]})
    assert invoice.payments is not None
    intent = billing.client.v1.payment_intents.retrieve(str(invoice.payments.data[0].payment.payment_intent))
    return sub, billing.client.v1.charges.retrieve(str(intent.latest_charge))


def test_dashboard_refund_is_scenario_g(billing: BillingKit, control: FakeStripeControl) -> None:
    sub, charge = _paid_charge(billing)
    mark = billing.mark()
    refund = control.dashboard_refund(charge.id)
    assert (refund["status"], refund["amount"], refund["charge"]) == ("succeeded", 1500, charge.id)
    assert billing.types_since(mark) == ["charge.refunded", "refund.created"]
    refunded = billing.events_since(mark)[0]["data"]["object"]
    assert (refunded["refunded"], refunded["amount_refunded"]) == (True, 1500)
    after = billing.client.v1.charges.retrieve(charge.id)
    assert (after.refunded, after.amount_refunded) == (True, 1500)
    assert billing.client.v1.invoices.retrieve(str(sub.latest_invoice)).status == "paid"
    assert billing.client.v1.subscriptions.retrieve(sub.id).status == "active"


def test_api_refund_of_an_invoice_payment(billing: BillingKit) -> None:
    """``POST /v1/refunds`` by PaymentIntent (partial) then by charge (the rest); idempotent by key."""
    _sub, charge = _paid_charge(billing)
    client = billing.client
    mark = billing.mark()
    partial = client.v1.refunds.create(
        {"payment_intent": str(charge.payment_intent), "amount": 500}, {"idempotency_key": "refund:inv:1"}
    )
    replay = client.v1.refunds.create(
        {"payment_intent": str(charge.payment_intent), "amount": 500}, {"idempotency_key": "refund:inv:1"}
    )
    assert replay.id == partial.id and partial.customer == charge.customer
    rest = client.v1.refunds.create({"charge": charge.id})
    assert rest.amount == 1000
    assert billing.types_since(mark) == ["charge.refunded", "refund.created"] * 2
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.refunds.create({"charge": charge.id})
    assert info.value.code == "charge_already_refunded"


def test_dispute_won_is_scenario_h(billing: BillingKit, control: FakeStripeControl) -> None:
    _sub, charge = _paid_charge(billing)
    mark = billing.mark()
    opened = control.dispute(charge.id, "product_not_received")
    assert billing.types_since(mark) == ["charge.dispute.created", "charge.dispute.funds_withdrawn"]
    created = billing.events_since(mark)[0]["data"]["object"]
    assert (created["status"], created["reason"], created["is_charge_refundable"]) == (
        "needs_response",
        "product_not_received",
        False,
    )
    dispute = billing.client.v1.disputes.retrieve(opened["id"])
    assert dispute.charge == charge.id and dispute.amount == 1500
    assert billing.client.v1.charges.retrieve(charge.id).disputed is True
    with pytest.raises(stripe.InvalidRequestError) as refused:
        billing.client.v1.refunds.create({"charge": charge.id})
    assert refused.value.code == "charge_disputed"

    mark = billing.mark()
    won = billing.client.v1.disputes.update(dispute.id, {"evidence": {"uncategorized_text": "winning_evidence"}})
    assert won.status == "won"
    assert billing.types_since(mark) == [
        "charge.dispute.updated",
        "charge.dispute.closed",
        "charge.dispute.funds_reinstated",
    ]
    updated = billing.events_since(mark)[0]["data"]
    assert updated["object"]["status"] == "under_review"
    assert updated["previous_attributes"]["status"] == "needs_response"
    assert [t.amount for t in won.balance_transactions] == [-1500, 1500]
    with pytest.raises(stripe.InvalidRequestError):
        billing.client.v1.disputes.close(dispute.id)


@pytest.mark.parametrize("how", ["losing_evidence", "close"])
def test_dispute_lost_is_scenario_h_prime(billing: BillingKit, control: FakeStripeControl, how: str) -> None:
    _sub, charge = _paid_charge(billing)
    dispute_id = control.dispute(charge.id)["id"]
    mark = billing.mark()
    if how == "close":
        lost = billing.client.v1.disputes.close(dispute_id)
        assert billing.types_since(mark) == ["charge.dispute.closed"]
    else:
        lost = billing.client.v1.disputes.update(dispute_id, {"evidence": {"uncategorized_text": "losing_evidence"}})
        assert billing.types_since(mark) == ["charge.dispute.updated", "charge.dispute.closed"]
    assert lost.status == "lost"
    assert billing.events_since(mark)[-1]["data"]["object"]["status"] == "lost"


def test_dispute_test_card_disputes_by_itself(billing: BillingKit, control: FakeStripeControl) -> None:
    """``pm_card_createDispute``: the charge succeeds, and right after the Checkout flow the dispute follows."""
    mark = billing.mark()
    _sub, charge = _paid_charge(billing, payment_method="pm_card_createDispute")
    found = wait_until(lambda: billing.client.v1.disputes.list({"charge": charge.id}).data, message="the dispute")
    assert found[0].reason == "fraudulent" and found[0].status == "needs_response"
    types = billing.types_since(mark)
    assert types[-3:] == ["checkout.session.completed", "charge.dispute.created", "charge.dispute.funds_withdrawn"]
    inquiry = _paid_charge(billing, payment_method="pm_card_createDisputeInquiry")[1]
    disputes = wait_until(lambda: billing.client.v1.disputes.list({"charge": inquiry.id}).data, message="inquiry")
    assert disputes[0].status == "warning_needs_response" and disputes[0].is_charge_refundable is True


def test_portal_session_and_cancel_at_period_end(billing: BillingKit, control: FakeStripeControl) -> None:
    clock = billing.clock()
    customer = billing.customer(clock)
    sub = billing.subscribe(billing.price(), customer)
    session = billing.client.v1.billing_portal.sessions.create(
        {
            "customer": customer,
            "return_url": "https://app.example.test/billing",
            "flow_data": {"type": "subscription_cancel", "subscription_cancel": {"subscription": sub.id}},
        }
    )
    assert session.id.startswith("bps_") and session.url.startswith("https://billing.stripe.com/")
    assert session.return_url == "https://app.example.test/billing" and session.customer == customer
    assert session.flow is not None and session.flow.type == "subscription_cancel"
    assert session.flow.subscription_cancel is not None and session.flow.subscription_cancel.subscription == sub.id
    assert session.flow.after_completion.type == "portal_homepage"

    mark = billing.mark()
    canceled = control.portal(session.id, "cancel_subscription", feedback="too_expensive")
    assert canceled["cancel_at_period_end"] is True and canceled["cancellation_details"]["feedback"] == "too_expensive"
    [event] = billing.events_since(mark)
    assert event["type"] == "customer.subscription.updated" and event["request"]["id"] is None
    renewed = control.portal(session.id, "renew_subscription")
    assert renewed["cancel_at_period_end"] is False and renewed["cancel_at"] is None

    quirk = control.portal(session.id, "cancel_subscription", use_cancel_at=True)
    assert quirk["cancel_at"] == billing.period_end(sub.id) and quirk["cancel_at_period_end"] is False


def test_portal_payment_method_update_pays_the_open_invoice(billing: BillingKit, control: FakeStripeControl) -> None:
    clock = billing.clock()
    customer = billing.customer(clock)
    sub = billing.subscribe(billing.price(), customer)
    control.use_payment_method(customer, "pm_card_chargeCustomerFail")
    billing.advance(clock, billing.period_end(sub.id) + 2 * HOUR)
    assert billing.client.v1.subscriptions.retrieve(sub.id).status == "past_due"
    session = billing.client.v1.billing_portal.sessions.create(
        {"customer": customer, "flow_data": {"type": "payment_method_update"}}
    )
    assert session.flow is not None and session.flow.type == "payment_method_update"
    mark = billing.mark()
    result = control.portal(session.id, "update_payment_method", payment_method="pm_card_mastercard")
    assert [i["status"] for i in result["paid"]] == ["paid"] and result["failed"] == []
    assert billing.types_since(mark) == [
        "customer.updated",
        "invoice.paid",
        "invoice.payment_succeeded",
        "invoice_payment.paid",
        "customer.subscription.updated",
    ]
    assert billing.client.v1.subscriptions.retrieve(sub.id).status == "active"
    default = billing.client.v1.customers.retrieve(customer).invoice_settings
    assert default is not None and default.default_payment_method == result["payment_method"]["id"]


def test_portal_session_errors(billing: BillingKit) -> None:
    client = billing.client
    customer = billing.customer()
    for params, param in [
        ({"customer": "cus_missing"}, "customer"),
        (
            {"customer": customer, "flow_data": {"type": "subscription_cancel", "subscription_cancel": {}}},
            "flow_data[subscription_cancel][subscription]",
        ),
        ({"customer": customer, "flow_data": {"type": "dance"}}, "flow_data[type]"),
    ]:
        with pytest.raises(stripe.InvalidRequestError) as info:
            client.v1.billing_portal.sessions.create(params)  # type: ignore[arg-type]
        assert info.value.param == param, info.value.user_message
    assert START > 0 and DAY == 86_400
