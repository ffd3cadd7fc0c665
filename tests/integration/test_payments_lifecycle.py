"""The whole payment lifecycle against a real stack: every service a separate process on the real RabbitMQ
and PostgreSQL, the Stripe and panel stand-ins over HTTP, the stripe SDK unmodified.

One stack for the module, configured for short waits: the sweeper runs every 2 s and looks at sessions
older than 8 s, a provisioning refund is held 6 s, checkout sessions expire after 31 minutes. Tests pause
the stand-in's webhook deliveries when they need to (and always resume them). The test that moves the
stand-in's clock runs last: after it, new sessions would be refused (their ``expires_at`` comes from our
clock).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest

from devstack import Stack
from spawnpoint_contracts import ServerCreated, ServerCreatedPayload, ServerInstalled, ServerInstalledPayload

from .conftest import customer_token
from .payments_support import (
    Payments,
    Sql,
    StripeControl,
    metric_value,
    open_checkout,
    out_of_band_session,
    publish_event,
    return_page,
    stripe_client,
    wait_events_settled,
    wait_payment_status,
)
from .support import Api, BrokerProbe, eventually

pytestmark = [
    pytest.mark.integration,
    # the stripe SDK's async HTTPX client (used here as a dashboard would) triggers this inside httpx
    pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning"),
]

SWEEP_INTERVAL = 2.0
SWEEP_AFTER = 8.0
HOLD = 6.0


@pytest.fixture(scope="module")
def pstack(make_stack: Callable[..., Stack]) -> Iterator[Stack]:
    stack = make_stack(
        per_process_env={
            "payment-service": {
                "PAYMENT_SWEEP_INTERVAL_SECONDS": str(SWEEP_INTERVAL),
                "PAYMENT_SWEEP_AFTER_SECONDS": str(SWEEP_AFTER),
                "REFUND_POLICY": "hold",
                "REFUND_HOLD_SECONDS": str(HOLD),
                "CHECKOUT_EXPIRY_MINUTES": "31",
            }
        }
    )
    yield stack
    stack.stop()  # free the machine for the next modules (the session fixture drops its databases)


@pytest.fixture
async def papi(pstack: Stack) -> AsyncIterator[Api]:
    async with Api(pstack.config) as client:
        yield client


@pytest.fixture
def fake(papi: Api) -> StripeControl:
    return StripeControl(papi)


@pytest.fixture
def payments(pstack: Stack) -> Payments:
    return Payments(pstack)


@pytest.fixture
async def paused(fake: StripeControl) -> AsyncIterator[StripeControl]:
    """Webhook deliveries held by the stand-in for the test; resumed whatever happens."""
    await fake.pause()
    try:
        yield fake
    finally:
        await fake.resume()


async def _order_status(api: Api, token: str, order_id: str) -> str:
    status: str = (await api.order(token, order_id)).json()["status"]
    return status


async def _paid_via(payments: Payments, order_id: str) -> list[str]:
    return [
        json.loads(bytes(r["body"]))["payload"]["fulfilled_via"] for r in await payments.events(order_id, "OrderPaid")
    ]


# --- checkout sessions ------------------------------------------------------------------------------


async def test_one_open_session_per_order_carrying_the_order(
    papi: Api, fake: StripeControl, payments: Payments
) -> None:
    checkout = await open_checkout(papi)
    again = await asyncio.gather(*(papi.open_checkout(checkout.token, checkout.order_id) for _ in range(3)))
    assert [r.status_code for r in again] == [200, 200, 200]
    assert {r.json()["client_secret"] for r in again} == {checkout.client_secret}
    (session,) = await fake.sessions(checkout.order_id)
    order = (await papi.order(checkout.token, checkout.order_id)).json()
    assert session["id"] == checkout.session_id and session["url"] is None
    assert (session["mode"], session["ui_mode"], session["status"]) == ("payment", "embedded_page", "open")
    assert (session["amount_total"], session["currency"]) == (order["amount"], order["currency"])
    assert session["metadata"] == {"serverOrderId": checkout.order_id}
    assert session["client_reference_id"] == checkout.order_id
    assert "session_id={CHECKOUT_SESSION_ID}" in session["return_url"]
    details = await fake.session(checkout.session_id)
    assert details["payment_intent_data"]["metadata"] == {"serverOrderId": checkout.order_id}
    assert 31 * 60 - 60 <= session["expires_at"] - session["created"] <= 31 * 60 + 1
    stored = await payments.value(
        "SELECT params->>'expires_at' FROM checkout_sessions WHERE stripe_session_id = $1", checkout.session_id
    )
    assert int(stored) == session["expires_at"]


async def test_a_retried_create_with_the_stored_parameters_makes_one_session(
    papi: Api, fake: StripeControl, payments: Payments
) -> None:
    token = customer_token()
    order_id = (await papi.place_order(token)).json()["id"]
    # Stripe makes the session and saves the answer under our key, but the answer never reaches us.
    await fake.add_fault(
        path_prefix="/v1/checkout/sessions", method="POST", status=500, after_commit=True, should_retry=False
    )
    failed = await papi.open_checkout(token, order_id)
    assert failed.status_code == 503, failed.text
    assert len(await fake.sessions(order_id)) == 1
    retried = await papi.open_checkout(token, order_id)
    assert retried.status_code == 201, retried.text
    (session,) = await fake.sessions(order_id)
    assert retried.json()["session_id"] == session["id"]
    rows = await payments.rows(
        "SELECT attempt, idempotency_key, status, (params->>'expires_at')::bigint AS expires_at "
        "FROM checkout_sessions WHERE order_id = $1",
        uuid.UUID(order_id),
    )
    assert [(r["attempt"], r["status"], r["expires_at"]) for r in rows] == [(1, "open", session["expires_at"])]
    assert rows[0]["idempotency_key"] == f"checkout-session:{order_id}:1"


# --- fulfilment: duplicates, return page, races ----------------------------------------------------


async def test_the_same_completed_event_three_times_makes_one_order_paid(
    papi: Api, fake: StripeControl, payments: Payments
) -> None:
    checkout = await open_checkout(papi)
    assert (await fake.pay(checkout.session_id)).status_code == 200
    event = await fake.event(checkout.session_id, "checkout.session.completed")
    await wait_payment_status(payments, checkout.order_id, "paid")
    await fake.redeliver(event["id"])
    await fake.redeliver(event["id"])

    async def three_2xx() -> bool:
        attempts = await fake.deliveries(event["id"])
        return len(attempts) >= 3 and all(200 <= (a["status_code"] or 0) < 300 for a in attempts)

    await eventually(three_2xx, what="three 2xx deliveries")
    await wait_events_settled(payments, checkout.order_id, 1)
    assert await payments.count(checkout.order_id, "OrderPaid") == 1
    assert await _paid_via(payments, checkout.order_id) == ["webhook"]
    await papi.wait_status(checkout.token, checkout.order_id, "CREATED")
    assert len(await papi.panel_servers(external_id=checkout.order_id)) == 1
    assert await _order_status(papi, checkout.token, checkout.order_id) == "paid"


async def test_the_return_page_before_the_webhook_fulfils_once(
    papi: Api, paused: StripeControl, payments: Payments
) -> None:
    checkout = await open_checkout(papi)
    assert (await paused.pay(checkout.session_id)).status_code == 200
    seen = await return_page(papi, checkout.token, checkout.session_id)
    assert seen.status_code == 200, seen.text
    body = seen.json()
    assert (body["session_status"], body["payment_status"], body["order_status"], body["paid"]) == (
        "complete",
        "paid",
        "paid",
        True,
    )
    assert await _paid_via(payments, checkout.order_id) == ["return_page"]
    assert (await return_page(papi, checkout.token, checkout.session_id)).json()["paid"] is True
    assert (await return_page(papi, customer_token(), checkout.session_id)).status_code == 404
    assert (await return_page(papi, checkout.token, "cs_test_unknown")).status_code == 404
    assert (await return_page(papi, checkout.token, "cs-not!valid")).status_code == 422
    assert await paused.flush() >= 1  # the webhook arrives late
    await wait_events_settled(payments, checkout.order_id, 1)
    (event,) = await payments.stripe_events(checkout.order_id)
    assert event["outcome"] == "already_paid"
    assert await payments.count(checkout.order_id, "OrderPaid") == 1
    assert (
        await metric_value(
            papi, "payment-service", "payment_fulfilments_total", path="return_page", outcome="fulfilled"
        )
        >= 1
    )


async def test_the_return_page_racing_the_webhook_fulfils_once(
    papi: Api, paused: StripeControl, payments: Payments
) -> None:
    checkout = await open_checkout(papi)
    assert (await paused.pay(checkout.session_id)).status_code == 200
    flush = asyncio.create_task(paused.flush("concurrent"))
    pages = await asyncio.gather(*(return_page(papi, checkout.token, checkout.session_id) for _ in range(5)))
    assert await flush == 1
    assert all(page.status_code == 200 and page.json()["paid"] for page in pages)
    await wait_events_settled(payments, checkout.order_id, 1)
    assert await payments.count(checkout.order_id, "OrderPaid") == 1
    assert await payments.status(checkout.order_id) == "paid"


# --- delayed payment methods ------------------------------------------------------------------------


async def test_a_delayed_payment_provisions_nothing_until_it_succeeds(
    papi: Api, fake: StripeControl, payments: Payments
) -> None:
    checkout = await open_checkout(papi)
    assert (await fake.pay(checkout.session_id, "delayed")).status_code == 200
    await wait_payment_status(payments, checkout.order_id, "payment_processing")
    await wait_events_settled(payments, checkout.order_id, 1)
    waiting = await papi.wait_status(checkout.token, checkout.order_id, "PENDING")
    assert waiting["phase"] in ("awaiting_payment", "payment_processing")
    await papi.wait_status(checkout.token, checkout.order_id, "PENDING")
    page = (await return_page(papi, checkout.token, checkout.session_id)).json()
    assert (page["paid"], page["order_status"], page["payment_status"]) == (False, "payment_processing", "unpaid")
    assert await payments.count(checkout.order_id, "OrderPaid") == 0
    assert await papi.panel_servers(external_id=checkout.order_id) == []
    assert await _order_status(papi, checkout.token, checkout.order_id) == "payment_processing"

    await fake.settle(checkout.session_id, "succeeded")
    await wait_payment_status(payments, checkout.order_id, "paid")

    async def server() -> bool:
        return len(await papi.panel_servers(external_id=checkout.order_id)) == 1

    await eventually(server, what="the server once the money arrived")
    assert await payments.count(checkout.order_id, "OrderPaid") == 1
    assert await payments.count(checkout.order_id, "PaymentProcessing") == 1


async def test_a_failed_delayed_payment_ends_the_order_without_provisioning_or_refund(
    papi: Api, fake: StripeControl, payments: Payments
) -> None:
    checkout = await open_checkout(papi)
    assert (await fake.pay(checkout.session_id, "delayed")).status_code == 200
    await wait_payment_status(payments, checkout.order_id, "payment_processing")
    await fake.settle(checkout.session_id, "failed")
    await wait_payment_status(payments, checkout.order_id, "payment_failed")
    shown = await _wait_phase(papi, checkout.token, checkout.order_id, "payment_failed")
    assert shown["status"] == "FAILED"
    await eventually(
        lambda: _is(_order_status(papi, checkout.token, checkout.order_id), "payment_failed"),
        what="order-service payment_failed",
    )
    assert await payments.count(checkout.order_id, "PaymentFailed") == 1
    assert await payments.count(checkout.order_id, "OrderPaid") == 0
    assert await payments.refunds(checkout.order_id) == []
    assert await fake.refunds(checkout.order_id) == []
    assert await papi.panel_servers(external_id=checkout.order_id) == []
    assert (await papi.open_checkout(checkout.token, checkout.order_id)).status_code == 409


async def _is(value: Awaitable[object], wanted: object) -> bool:
    return await value == wanted


async def _wait_phase(api: Api, token: str, order_id: str, phase: str) -> dict[str, Any]:
    async def reached() -> dict[str, Any] | None:
        response = await api.status(token, order_id)
        body: dict[str, Any] = response.json()
        return body if response.status_code == 200 and body.get("phase") == phase else None

    return await eventually(reached, what=f"phase {phase} of {order_id}")


# --- lost and early webhooks ------------------------------------------------------------------------


async def test_a_lost_webhook_is_reconciled_by_the_sweeper_within_one_interval(
    papi: Api, paused: StripeControl, payments: Payments
) -> None:
    checkout = await open_checkout(papi)
    created = await payments.value(
        "SELECT extract(epoch FROM created_at) FROM checkout_sessions WHERE stripe_session_id = $1", checkout.session_id
    )
    assert (await paused.pay(checkout.session_id)).status_code == 200
    await wait_payment_status(payments, checkout.order_id, "paid", timeout=SWEEP_AFTER + 3 * SWEEP_INTERVAL + 10)
    paid_at = await payments.value(
        "SELECT extract(epoch FROM paid_at) FROM payments WHERE order_id = $1", uuid.UUID(checkout.order_id)
    )
    delay = float(paid_at) - (float(created) + SWEEP_AFTER)  # seconds after the session became eligible
    assert await _paid_via(payments, checkout.order_id) == ["sweeper"]
    assert delay <= SWEEP_INTERVAL + 2.5, f"fulfilled {delay:.2f}s after the session became eligible"
    print(f"\nsweeper fulfilled {delay:.2f}s after eligibility (interval {SWEEP_INTERVAL}s)")
    assert await paused.queued() >= 1  # the webhook never arrived
    await paused.resume()
    await wait_events_settled(payments, checkout.order_id, 1)
    assert await payments.count(checkout.order_id, "OrderPaid") == 1


async def test_an_event_for_an_order_not_known_yet_is_kept_and_applied_once_it_is(
    papi: Api, fake: StripeControl, payments: Payments
) -> None:
    token = customer_token()
    order_id = (await papi.place_order(token)).json()["id"]
    foreign = await out_of_band_session(papi, order_id)
    assert (await fake.pay(foreign)).status_code == 200

    async def kept() -> bool:
        rows = await payments.stripe_events(order_id)
        return bool(rows) and rows[0]["attempts"] >= 1 and "not known" in (rows[0]["last_error"] or "")

    await eventually(kept, what="the event kept for retry")
    event = await fake.event(foreign, "checkout.session.completed")
    assert all(200 <= (d["status_code"] or 0) < 300 for d in await fake.deliveries(event["id"]))
    assert await payments.count(order_id, "OrderPaid") == 0

    # The order becomes known here. The kept event is applied at once, possibly while this request is
    # still creating its own session: 201, or 409 when the order was paid before the session was recorded.
    ours = await papi.open_checkout(token, order_id)
    assert ours.status_code in (201, 409), ours.text
    await wait_payment_status(payments, order_id, "paid")
    (paid,) = await payments.events(order_id, "OrderPaid")
    assert json.loads(bytes(paid["body"]))["payload"]["session_id"] == foreign

    async def ours_closed() -> bool:
        mine = [s for s in await fake.sessions(order_id) if s["id"] != foreign]
        return len(mine) == 1 and mine[0]["status"] == "expired"

    await eventually(ours_closed, what="the order's own session expired: it cannot be paid twice")


async def test_a_second_paid_session_is_refunded_as_a_duplicate_and_makes_no_second_order_paid(
    papi: Api, fake: StripeControl, payments: Payments
) -> None:
    checkout = await open_checkout(papi)
    assert (await fake.pay(checkout.session_id)).status_code == 200
    await wait_payment_status(payments, checkout.order_id, "paid")
    extra = await out_of_band_session(papi, checkout.order_id)
    assert (await fake.pay(extra)).status_code == 200

    async def refunded() -> list[dict[str, Any]] | None:
        made = await fake.refunds(checkout.order_id)
        return made or None

    (refund,) = await eventually(refunded, what="the duplicate refunded")
    extra_pi = (await fake.session(extra))["payment_intent"]["id"]
    assert refund["payment_intent"] == extra_pi and refund["reason"] == "duplicate"

    async def recorded() -> Any:
        rows = await payments.refunds(checkout.order_id)
        return rows[0] if len(rows) == 1 and rows[0]["status"] == "succeeded" else None

    row = await eventually(recorded, what="the refund recorded")
    assert (row["idempotency_key"], row["kind"], row["stripe_refund_id"]) == (
        f"refund:{checkout.order_id}:{extra_pi}",
        "duplicate",
        refund["id"],
    )
    assert await payments.count(checkout.order_id, "OrderPaid") == 1
    assert await payments.count(checkout.order_id, "OrderRefunded") == 0
    assert await payments.status(checkout.order_id) == "paid"


# --- refunds after provisioning failures -----------------------------------------------------------


async def _failing_install(api: Api, order_id: str) -> None:
    response = await api.http.post(
        api.url("panel-fake", "/_fake/install"), json={"outcome": "failed", "external_id": order_id, "seconds": 1}
    )
    assert response.status_code == 200, response.text


async def test_a_permanent_provisioning_failure_refunds_once_even_when_delivered_twice(
    papi: Api, pstack: Stack, fake: StripeControl, payments: Payments
) -> None:
    token = customer_token()
    order_id = (await papi.place_order(token)).json()["id"]
    await _failing_install(papi, order_id)  # the panel will fail this server's installation: not replayable
    session_id = (await papi.open_checkout(token, order_id)).json()["session_id"]
    assert (await fake.pay(session_id)).status_code == 200
    await wait_payment_status(payments, order_id, "paid")
    await wait_payment_status(payments, order_id, "refunded", timeout=HOLD + 40)
    (refund,) = await fake.refunds(order_id)
    assert refund["metadata"]["reason"] == "provisioning_failed" and refund["status"] == "succeeded"
    await _wait_phase(papi, token, order_id, "refunded")
    await eventually(lambda: _is(_order_status(papi, token, order_id), "refunded"), what="order-service refunded")

    # The ProvisionFailed comes again: the same message twice, then as a new event.
    provisioner = Sql(pstack, "provisioner")
    (failed,) = await provisioner.rows(
        "SELECT id, body FROM outbox WHERE message_type = 'ProvisionFailed' AND order_id = $1", uuid.UUID(order_id)
    )
    probe = BrokerProbe(pstack.config.namespace)
    await probe.connect()
    try:
        for message_id in (str(failed["id"]), str(failed["id"])):
            await probe.publish_to_queue(
                "payment-service.provision-failed",
                bytes(failed["body"]),
                message_id=message_id,
                headers={"event_type": "ProvisionFailed"},
            )
        again = json.loads(bytes(failed["body"]))
        again["event_id"] = str(uuid.uuid4())
        await probe.publish_to_queue(
            "payment-service.provision-failed",
            json.dumps(again).encode(),
            message_id=again["event_id"],
            headers={"event_type": "ProvisionFailed"},
        )
    finally:
        await probe.close()

    async def handled() -> bool:
        keys = {r["message_key"] for r in await payments.inbox(order_id)}
        return {str(failed["id"]), again["event_id"]} <= keys

    await eventually(handled, what="both ProvisionFailed events handled")
    await eventually(lambda: _is(probe_depth(pstack), 0), what="the payment queue drained")
    assert len(await fake.refunds(order_id)) == 1
    assert await payments.count(order_id, "OrderRefunded") == 1
    assert [r["status"] for r in await payments.refunds(order_id)] == ["succeeded"]
    assert (
        await metric_value(
            papi, "payment-service", "payment_refunds_total", reason="provisioning_failed", outcome="succeeded"
        )
        >= 1
    )


async def probe_depth(stack: Stack) -> int:
    probe = BrokerProbe(stack.config.namespace)
    await probe.connect()
    try:
        return await probe.depth("payment-service.provision-failed")
    finally:
        await probe.close()


async def test_a_held_refund_is_not_made_when_an_operator_replay_ends_created(
    papi: Api, pstack: Stack, fake: StripeControl, payments: Payments
) -> None:
    token = customer_token()
    order_id = (await papi.place_order(token)).json()["id"]
    await _failing_install(papi, order_id)
    session_id = (await papi.open_checkout(token, order_id)).json()["session_id"]
    assert (await fake.pay(session_id)).status_code == 200

    async def held() -> Any:
        rows = await payments.refunds(order_id)
        return rows[0] if rows and rows[0]["status"] == "scheduled" else None

    refund = await eventually(held, timeout=40, what="the refund held after the real failure")
    await papi.wait_status(token, order_id, "FAILED")
    # The operator fixes the cause and replays; the provisioner creates and installs the server.
    server = (await papi.panel_servers(external_id=order_id))[0]
    common = {"order_id": uuid.UUID(order_id), "correlation_id": "operator-replay", "producer": "provisioner"}
    await publish_event(
        pstack,
        ServerCreated(
            **common,
            payload=ServerCreatedPayload(
                server_id=server["id"],
                server_uuid=server["uuid"],
                identifier=server["identifier"],
                external_id=order_id,
                panel_user_id=server["user"],
                adopted=True,
            ),
        ),
    )
    await publish_event(
        pstack,
        ServerInstalled(
            **common, payload=ServerInstalledPayload(server_id=server["id"], identifier=server["identifier"])
        ),
    )
    await papi.wait_status(token, order_id, "CREATED")

    async def cancelled_and_past_due() -> bool:
        rows = await payments.refunds(order_id)
        past_due = time.time() > refund["due_at"].timestamp() + 2 * SWEEP_INTERVAL
        return bool(rows[0]["status"] == "cancelled") and past_due

    await eventually(cancelled_and_past_due, timeout=HOLD + 20, what="the held refund cancelled and past its due time")
    assert await fake.refunds(order_id) == []
    assert await payments.status(order_id) == "paid"
    assert await payments.count(order_id, "OrderRefunded") == 0


# --- ordering and expiry (the clock moves: keep these last) -----------------------------------------


async def test_reverse_order_delivery_never_moves_an_order_backwards(
    papi: Api, paused: StripeControl, payments: Payments
) -> None:
    first = await open_checkout(papi)
    await stripe_client(papi).v1.checkout.sessions.expire_async(first.session_id)  # e.g. from the dashboard
    replaced = await papi.open_checkout(first.token, first.order_id)
    assert replaced.status_code == 201, replaced.text
    second_session = replaced.json()["session_id"]
    assert second_session != first.session_id
    assert (await paused.pay(second_session)).status_code == 200
    delayed = await open_checkout(papi)
    assert (await paused.pay(delayed.session_id, "delayed")).status_code == 200
    await paused.settle(delayed.session_id, "succeeded")
    # queued: A.expired, B.completed, C.completed (unpaid), C.async_payment_succeeded -> sent newest first
    assert await paused.flush("reverse") >= 4
    await wait_events_settled(payments, first.order_id, 2)
    await wait_events_settled(payments, delayed.order_id, 2)
    assert await payments.status(first.order_id) == "paid"
    assert await payments.count(first.order_id, "OrderPaid") == 1
    assert await payments.count(first.order_id, "OrderExpired") == 0
    assert await payments.status(delayed.order_id) == "paid"
    assert await payments.count(delayed.order_id, "OrderPaid") == 1
    assert await payments.count(delayed.order_id, "PaymentProcessing") == 0
    for checkout in (first, delayed):
        shown = await papi.wait_status(checkout.token, checkout.order_id, "CREATED")
        assert shown["phase"] == "ready"
        assert await _order_status(papi, checkout.token, checkout.order_id) == "paid"


async def test_expiry_ends_the_order_and_money_arriving_afterwards_is_returned(
    papi: Api, fake: StripeControl, payments: Payments
) -> None:
    lapsed = await open_checkout(papi)
    late = await open_checkout(papi)
    stray = await out_of_band_session(papi, late.order_id)  # a page still open elsewhere, valid for hours
    await fake.advance(31 * 60 + 5)
    for checkout in (lapsed, late):
        await wait_payment_status(payments, checkout.order_id, "expired")
        shown = await _wait_phase(papi, checkout.token, checkout.order_id, "expired")
        assert shown["status"] == "FAILED"
    assert await payments.count(lapsed.order_id, "OrderExpired") == 1
    refused = await fake.pay(lapsed.session_id)
    assert refused.status_code == 400 and "expired" in refused.text
    assert (await papi.open_checkout(lapsed.token, lapsed.order_id)).status_code == 409
    assert await _order_status(papi, lapsed.token, lapsed.order_id) == "expired"

    assert (await fake.pay(stray)).status_code == 200
    await wait_payment_status(payments, late.order_id, "refunded")
    (refund,) = await fake.refunds(late.order_id)
    assert refund["reason"] == "duplicate" and refund["metadata"]["reason"] == "paid_after_expiry"
    (announced,) = await payments.events(late.order_id, "OrderRefunded")
    assert json.loads(bytes(announced["body"]))["payload"]["reason"] == "paid_after_expiry"
    assert await payments.count(late.order_id, "OrderPaid") == 0
    await eventually(lambda: _is(_order_status(papi, late.token, late.order_id), "refunded"), what="order refunded")


async def test_no_service_of_this_stack_answered_500(papi: Api) -> None:
    assert await papi.services_that_answered_500() == {}
