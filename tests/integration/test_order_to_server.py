"""One order end to end through the real system: order -> checkout -> Stripe stand-in pays -> webhook ->
OrderPaid -> provisioner -> panel stand-in -> installation -> status CREATED."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from devstack import Stack

from .conftest import customer_token
from .support import Api, BrokerProbe, eventually

pytestmark = pytest.mark.integration


async def _paid_order(api: Api, token: str) -> tuple[str, str]:
    placed = await api.place_order(token)
    assert placed.status_code == 201, placed.text
    order_id = placed.json()["id"]
    checkout = await api.open_checkout(token, order_id)
    assert checkout.status_code == 201, checkout.text
    session_id = checkout.json()["session_id"]
    paid = await api.stripe_pay(session_id)
    assert paid.status_code == 200, paid.text
    return order_id, session_id


async def test_an_order_reaches_created_showing_pending_and_paid_on_the_way(api: Api) -> None:
    token = customer_token()
    placed = await api.place_order(token)
    assert placed.status_code == 201, placed.text
    order = placed.json()
    assert order["status"] == "pending_payment"
    assert order["amount"] == 500 and order["currency"] == "eur"  # computed from the catalog
    order_id = order["id"]

    seen: list[str] = []
    pending = await api.wait_status(token, order_id, "PENDING")
    seen.append(pending["status"])

    checkout = await api.open_checkout(token, order_id)
    assert checkout.status_code == 201, checkout.text
    assert checkout.json()["client_secret"]
    assert (await api.stripe_pay(checkout.json()["session_id"])).status_code == 200

    async def created() -> dict[str, Any] | None:
        response = await api.status(token, order_id)
        body: dict[str, Any] = response.json()
        if not seen or seen[-1] != body["status"]:
            seen.append(body["status"])
        return body if body["status"] == "CREATED" else None

    final = await eventually(created, timeout=60, interval=0.02, what="CREATED")
    assert seen[:3] == ["PENDING", "PAID", "CREATED"], seen
    servers = await api.panel_servers(external_id=order_id)
    assert len(servers) == 1
    assert final["server_id"] == servers[0]["identifier"]
    assert final["connect_path"] == f"/gameserver/{servers[0]['identifier']}"
    assert final["phase"] == "ready"
    assert (await api.order(token, order_id)).json()["status"] == "paid"


async def test_duplicate_webhooks_and_a_duplicate_order_paid_leave_one_server_and_one_order_paid(
    api: Api, broker: BrokerProbe, stack: Stack
) -> None:
    token = customer_token()
    order_id, session_id = await _paid_order(api, token)
    await api.wait_status(token, order_id, "PAID")

    completed = [
        e
        for e in await api.stripe_events()
        if e["type"] == "checkout.session.completed" and e["data"]["object"]["id"] == session_id
    ]
    assert len(completed) == 1
    for _ in range(2):
        assert (await api.stripe_redeliver(completed[0]["id"])).status_code == 200

    # Deliver the same OrderPaid a second time, straight to the provisioner's queue.
    paid_event = await eventually(lambda: _order_paid_event(stack, order_id), what="OrderPaid in the outbox")
    await broker.publish_to_queue(
        "provisioner.order-paid",
        paid_event["body"],
        message_id=paid_event["id"],
        headers={"event_type": "OrderPaid"},
    )
    await api.wait_status(token, order_id, "CREATED")

    async def deliveries_done() -> bool:
        attempts = [d for d in await _deliveries(api) if d.get("event_id") == completed[0]["id"]]
        return len(attempts) >= 3 and all(200 <= int(d.get("status_code") or 0) < 300 for d in attempts)

    await eventually(deliveries_done, what="three 2xx webhook deliveries")
    assert len(await api.panel_servers(external_id=order_id)) == 1
    assert await _count_events(stack, "payment-service", order_id, "OrderPaid") == 1
    assert await _count_status_events(stack, order_id, "OrderPaid") == 1
    assert await _count_events(stack, "provisioner", order_id, "ServerCreated") == 1


async def _deliveries(api: Api) -> list[dict[str, Any]]:
    response = await api.http.get(api.url("stripe-fake", "/_fake/deliveries"))
    body = response.json()
    data: list[dict[str, Any]] = body["data"] if isinstance(body, dict) else body
    return data


async def _psql(stack: Stack, service: str, sql: str, *args: str) -> list[str]:
    url = stack.config.database_url(service).replace("postgresql+asyncpg://", "postgresql://")
    proc = await asyncio.create_subprocess_exec(
        "psql",
        url,
        "-At",
        "-v",
        "ON_ERROR_STOP=1",
        "-c",
        sql,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return [line for line in out.decode().splitlines() if line]


async def _order_paid_event(stack: Stack, order_id: str) -> dict[str, Any] | None:
    rows = await _psql(
        stack,
        "payment-service",
        "SELECT id, encode(body, 'escape') FROM outbox "
        f"WHERE message_type='OrderPaid' AND order_id='{uuid.UUID(order_id)}'",
    )
    if not rows:
        return None
    event_id, body = rows[0].split("|", 1)
    return {"id": event_id, "body": body.encode()}


async def _count_events(stack: Stack, service: str, order_id: str, message_type: str) -> int:
    rows = await _psql(
        stack,
        service,
        f"SELECT count(*) FROM outbox WHERE message_type='{message_type}' AND order_id='{uuid.UUID(order_id)}'",
    )
    return int(rows[0])


async def _count_status_events(stack: Stack, order_id: str, event_type: str) -> int:
    rows = await _psql(
        stack,
        "status-service",
        f"SELECT count(*) FROM order_events WHERE event_type='{event_type}' AND order_id='{uuid.UUID(order_id)}'",
    )
    return int(rows[0])
