"""Helpers for the payment end-to-end tests: the Stripe stand-in's control API (async), read-only SQL on a
service's database, publishing an event to a stack's exchange, and the order-to-checkout steps.

Everything crosses a process boundary: HTTP to the services and the stand-in, SQL to the databases,
AMQP to the broker. Waiting is polling to a deadline (``support.eventually``).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import aio_pika
import asyncpg
import httpx
import stripe

from devstack import Stack
from spawnpoint_contracts import Event
from spawnpoint_contracts.topology import EVENTS_EXCHANGE
from spawnpoint_kit.settings import CommonSettings

from .conftest import customer_token
from .support import Api, eventually


class StripeControl:
    """The stand-in's ``/_fake`` API (see sandbox/stripe-fake/README.md)."""

    def __init__(self, api: Api) -> None:
        self.http = api.http
        self.base = api.url("stripe-fake", "/_fake")

    async def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self.http.request(method, self.base + path, **kwargs)
        response.raise_for_status()
        return response.json()

    async def pay(self, session_id: str, outcome: str = "paid") -> httpx.Response:
        return await self.http.post(f"{self.base}/sessions/{session_id}/pay", json={"outcome": outcome})

    async def settle(self, session_id: str, result: str) -> None:
        await self._json("POST", f"/sessions/{session_id}/async", json={"result": result})

    async def sessions(self, order_id: str) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = (await self._json("GET", "/sessions", params={"order_id": order_id}))["data"]
        return data

    async def session(self, session_id: str) -> dict[str, Any]:
        data: dict[str, Any] = await self._json("GET", f"/sessions/{session_id}")
        return data

    async def refunds(self, order_id: str) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = (await self._json("GET", "/refunds", params={"order_id": order_id}))["data"]
        return data

    async def events(self, **filters: str) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = (await self._json("GET", "/events", params=filters))["data"]
        return data

    async def event(self, session_id: str, event_type: str) -> dict[str, Any]:
        async def found() -> dict[str, Any] | None:
            matching = await self.events(type=event_type, session_id=session_id)
            return matching[0] if matching else None

        return await eventually(found, timeout=10, what=f"{event_type} of {session_id}")

    async def deliveries(self, event_id: str) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = (await self._json("GET", "/deliveries", params={"event_id": event_id}))["data"]
        return data

    async def redeliver(self, event_id: str) -> None:
        await self._json("POST", f"/events/{event_id}/redeliver")

    async def pause(self) -> None:
        await self._json("POST", "/deliveries/pause")

    async def resume(self) -> None:
        await self._json("POST", "/deliveries/resume")

    async def flush(self, order: str = "creation") -> int:
        delivered: int = (await self._json("POST", "/deliveries/flush", params={"order": order}))["delivered"]
        return delivered

    async def queued(self) -> int:
        count: int = (await self._json("GET", "/deliveries"))["queued"]
        return count

    async def advance(self, seconds: float) -> None:
        await self._json("POST", "/clock/advance", json={"seconds": seconds})

    async def add_fault(self, **fault: Any) -> None:
        await self._json("POST", "/faults", json=fault)

    async def clear_faults(self) -> None:
        await self._json("DELETE", "/faults")


class Sql:
    """Read-only queries on one service's database of a stack."""

    def __init__(self, stack: Stack, service: str) -> None:
        self.dsn = stack.config.database_url(service).replace("postgresql+asyncpg://", "postgresql://")

    async def rows(self, query: str, *args: object) -> list[asyncpg.Record]:
        connection = await asyncpg.connect(self.dsn)
        try:
            rows: list[asyncpg.Record] = await connection.fetch(query, *args)
            return rows
        finally:
            await connection.close()

    async def value(self, query: str, *args: object) -> Any:
        rows = await self.rows(query, *args)
        return rows[0][0] if rows else None


class Payments(Sql):
    """payment-service's tables, as the tests look at them."""

    def __init__(self, stack: Stack) -> None:
        super().__init__(stack, "payment-service")

    async def status(self, order_id: str) -> str | None:
        value: str | None = await self.value("SELECT status FROM payments WHERE order_id = $1", uuid.UUID(order_id))
        return value

    async def events(self, order_id: str, message_type: str) -> list[asyncpg.Record]:
        return await self.rows(
            "SELECT id, body, headers FROM outbox WHERE order_id = $1 AND message_type = $2",
            uuid.UUID(order_id),
            message_type,
        )

    async def count(self, order_id: str, message_type: str) -> int:
        return len(await self.events(order_id, message_type))

    async def stripe_events(self, order_id: str) -> list[asyncpg.Record]:
        return await self.rows(
            "SELECT id, type, status, outcome, attempts, last_error FROM stripe_events WHERE order_id = $1 "
            "ORDER BY received_at",
            uuid.UUID(order_id),
        )

    async def refunds(self, order_id: str) -> list[asyncpg.Record]:
        return await self.rows(
            "SELECT idempotency_key, kind, reason, status, due_at, stripe_refund_id FROM refunds WHERE order_id = $1",
            uuid.UUID(order_id),
        )

    async def inbox(self, order_id: str) -> list[asyncpg.Record]:
        return await self.rows("SELECT message_key, event_type FROM inbox WHERE order_id = $1", uuid.UUID(order_id))


async def publish_event(stack: Stack, event: Event) -> None:
    """Publish ``event`` to the stack's events exchange as the outbox relay would (every bound queue)."""
    connection = await aio_pika.connect(CommonSettings().broker_url.get_secret_value())
    try:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(f"{stack.config.namespace}{EVENTS_EXCHANGE}")
        await exchange.publish(
            aio_pika.Message(
                event.to_json_bytes(),
                message_id=str(event.event_id),
                correlation_id=event.correlation_id,
                headers={"event_type": event.event_type, "event_version": event.event_version},
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                content_type="application/json",
            ),
            routing_key=event.routing_key,
            mandatory=True,
        )
    finally:
        await connection.close()


@dataclass(frozen=True)
class Checkout:
    """One customer's order with its checkout opened."""

    token: str
    user_id: str
    order_id: str
    session_id: str
    client_secret: str


async def open_checkout(api: Api, *, user_id: str | None = None) -> Checkout:
    user_id = user_id or f"user-{uuid.uuid4().hex[:10]}"
    token = customer_token(user_id)
    placed = await api.place_order(token)
    assert placed.status_code == 201, placed.text
    order_id = placed.json()["id"]
    opened = await api.open_checkout(token, order_id)
    assert opened.status_code == 201, opened.text
    body = opened.json()
    return Checkout(token, user_id, order_id, body["session_id"], body["client_secret"])


async def return_page(api: Api, token: str, session_id: str) -> httpx.Response:
    return await api.http.get(
        api.url("payment-service", f"/checkout-sessions/{session_id}/status"), headers=api.auth(token)
    )


async def wait_payment_status(payments: Payments, order_id: str, wanted: str, *, timeout: float = 30) -> float:
    """Poll until payment-service's row has ``wanted``; returns the seconds it took."""
    started = time.monotonic()

    async def reached() -> bool:
        return await payments.status(order_id) == wanted

    await eventually(reached, timeout=timeout, what=f"payment {order_id} {wanted}")
    return time.monotonic() - started


async def wait_events_settled(payments: Payments, order_id: str, count: int, *, timeout: float = 30) -> None:
    """Poll until ``count`` stored Stripe events of the order have been applied."""

    async def applied() -> bool:
        rows = await payments.stripe_events(order_id)
        return len(rows) >= count and all(r["status"] == "processed" for r in rows)

    await eventually(applied, timeout=timeout, what=f"{count} applied Stripe events of {order_id}")


async def metric_value(api: Api, service: str, name: str, **labels: str) -> float:
    """One sample of a Prometheus counter (0 when absent)."""
    text = await api.metrics(service)
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if not line.startswith(name + "{") and line.split(" ")[0] != name:
            continue
        head, _, value = line.rpartition(" ")
        inner = head[len(name) :].strip("{}")
        if ",".join(sorted(inner.split(","))) == wanted or (not labels and head == name):
            return float(value)
    return 0.0


def stripe_client(api: Api) -> stripe.StripeClient:
    """The official SDK, unmodified, pointed at the stack's stand-in (as a dashboard user or another system)."""
    return stripe.StripeClient(
        "sk_test_integration", base_addresses={"api": api.url("stripe-fake", "")}, http_client=stripe.HTTPXClient()
    )


async def out_of_band_session(
    api: Api, order_id: str, *, amount: int = 500, currency: str = "eur", expires_in: int = 3 * 3600
) -> str:
    """A Checkout Session for the order made outside payment-service (another deployment, a restored backup,
    a script): payment-service learns about it only from Stripe."""
    now = int((await api.http.get(api.url("stripe-fake", "/_fake/clock"))).json()["now"])
    session = await stripe_client(api).v1.checkout.sessions.create_async(
        params={
            "mode": "payment",
            "ui_mode": "embedded_page",
            "line_items": [
                {
                    "price_data": {"currency": currency, "unit_amount": amount, "product_data": {"name": "Server"}},
                    "quantity": 1,
                }
            ],
            "metadata": {"serverOrderId": order_id},
            "client_reference_id": order_id,
            "payment_intent_data": {"metadata": {"serverOrderId": order_id}},
            "return_url": "https://shop.example.test/return?session_id={CHECKOUT_SESSION_ID}",
            "expires_at": now + expires_in,
        }
    )
    return str(session.id)
