"""The ``stripe_fake.testing`` control client covers the whole ``/_fake`` API that services' tests drive."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import stripe

from stripe_fake.testing import FakeStripeControl, WebhookReceiver

pytestmark = pytest.mark.contract

Params = Callable[..., Any]


def test_pause_flush_redeliver_resume_and_inspect_through_the_client(
    client: stripe.StripeClient, params_for: Params, control: FakeStripeControl, receiver: WebhookReceiver
) -> None:
    control.add_endpoint(receiver.url, "whsec_helpers")
    control.pause()
    first = client.v1.checkout.sessions.create(params=params_for("ord_h1"))
    second = client.v1.checkout.sessions.create(params=params_for("ord_h2"))
    control.pay(first.id)
    control.pay(second.id, "delayed")
    assert control.deliveries()["queued"] == 2
    assert control.flush("reverse") == 2
    assert [r.json()["data"]["object"]["id"] for r in receiver.wait_for(2)] == [second.id, first.id]
    (event,) = control.events(type="checkout.session.completed", session_id=first.id)
    assert control.redeliver(event["id"])["deliveries_scheduled"] == 1
    assert control.deliveries()["queued"] == 1  # still paused: queued, not sent
    assert control.resume() == 1
    assert receiver.wait_for(3)[2].json()["id"] == event["id"]
    details = control.session(second.id)
    assert details["payment_status"] == "unpaid" and details["payment_intent"]["status"] == "processing"
    assert details["payment_intent_data"] == {"metadata": {"serverOrderId": "ord_h2"}}


def test_faults_are_cleared_through_the_client(
    client: stripe.StripeClient, params_for: Params, control: FakeStripeControl
) -> None:
    control.add_fault(path_prefix="/v1/checkout/sessions", method="POST", status=503, times=None)
    with pytest.raises(stripe.APIError):
        client.v1.checkout.sessions.create(params=params_for("ord_f"))
    control.clear_faults()
    assert client.v1.checkout.sessions.create(params=params_for("ord_f")).status == "open"
