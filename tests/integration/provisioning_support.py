"""Helpers for the provisioning tests: the panel stand-in's control API, the services' databases (read
only), a second provisioner process, and the real ``spawnctl`` console script.

Everything here reaches the system the way an operator or a test harness would: over HTTP, AMQP and SQL,
and by running the installed binaries. Nothing patches the services' code.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import AbstractContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx

from devstack import Stack, StackConfig, replica
from spawnpoint_contracts import OrderPaid, OrderPaidPayload, OrderSnapshot

from .conftest import customer_token
from .support import Api, BrokerProbe, CliResult, eventually, run_cli

PROVISIONER_QUEUE = "provisioner.order-paid"
SERVERS_PATH = "/api/application/servers"

FAST_PROVISIONER = {
    "PANEL_TIMEOUT_SECONDS": "4",
    "PANEL_RETRY_ATTEMPTS": "4",
    "PANEL_RETRY_MAX_SECONDS": "6",
    "PANEL_RETRY_INITIAL_SECONDS": "0.2",
    "PANEL_RETRY_MAX_WAIT_SECONDS": "1",
    "PROVISION_RETRY_DELAYS": "1,2",
    "INSTALL_POLL_SECONDS": "0.5",
    "INSTALL_MAX_INTERVAL_SECONDS": "1",
    "INSTALL_DEADLINE_SECONDS": "6",
    "DLQ_METRICS_SECONDS": "1",
    "RELAY_POLL_SECONDS": "0.2",
}
"""Short timeouts, retry delays and install deadline, so the failure paths run in seconds."""


def provisioning_stack_config(flavor: str) -> dict[str, Any]:
    """``make_stack`` overrides for a stack tuned for the provisioning scenarios."""
    return {
        "panel_flavor": flavor,
        "extra_env": {"DB_POOL_SIZE": "3"},  # the PostgreSQL server is shared with other test stacks
        "per_process_env": {"provisioner": dict(FAST_PROVISIONER)},
        "panel_args": ["--install-seconds", "1"],
    }


@dataclass
class PaidOrder:
    order_id: str
    token: str
    user_id: str


class Harness:
    """One stack, seen from the outside."""

    def __init__(self, stack: Stack, api: Api) -> None:
        self.stack = stack
        self.api = api
        self.config = stack.config
        self._pools: dict[str, asyncpg.Pool] = {}

    # panel stand-in ---------------------------------------------------------------------------------

    async def panel(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = await self.api.http.request(method, self.api.url("panel-fake", f"/_fake{path}"), json=body)
        assert response.status_code < 400, response.text
        data: dict[str, Any] = response.json()
        return data

    async def panel_requests(self, **params: str) -> list[dict[str, Any]]:
        return list((await self.panel("GET", "/requests?" + str(httpx.QueryParams(params))))["requests"])

    async def creates(self, order_id: str) -> list[dict[str, Any]]:
        return [r for r in await self.panel_requests(external_id=order_id) if r["method"] == "POST"]

    async def reset_panel_faults(self) -> None:
        await self.panel("DELETE", "/faults")
        for node in (1, 2):
            await self.panel("POST", f"/nodes/{node}/wings", {"mode": "ok"})

    # orders ---------------------------------------------------------------------------------------

    async def place_order(self, **order: Any) -> PaidOrder:
        user_id = f"user-{uuid.uuid4().hex[:10]}"
        token = customer_token(user_id)
        placed = await self.api.place_order(token, **order)
        assert placed.status_code == 201, placed.text
        return PaidOrder(placed.json()["id"], token, user_id)

    async def pay(self, order: PaidOrder) -> None:
        checkout = await self.api.open_checkout(order.token, order.order_id)
        assert checkout.status_code == 201, checkout.text
        paid = await self.api.stripe_pay(checkout.json()["session_id"])
        assert paid.status_code == 200, paid.text

    async def paid_order(self, **order: Any) -> PaidOrder:
        placed = await self.place_order(**order)
        await self.pay(placed)
        return placed

    async def status(self, order: PaidOrder, wanted: str, *, timeout: float = 60.0) -> dict[str, Any]:
        return await self.api.wait_status(order.token, order.order_id, wanted, timeout=timeout)

    async def order_paid_for(self, order: PaidOrder) -> OrderPaid:
        """An OrderPaid for a placed order, built from its OrderCreated (as payment-service would send it)."""

        async def created() -> bytes | None:
            rows = await self.sql(
                "order-service",
                "SELECT body FROM outbox WHERE message_type = 'OrderCreated' AND order_id = $1",
                uuid.UUID(order.order_id),
            )
            return bytes(rows[0]["body"]) if rows else None

        body = json.loads(await eventually(created, what="OrderCreated in order-service's outbox"))
        snapshot = OrderSnapshot.model_validate(body["payload"]["order"])
        return OrderPaid(
            order_id=snapshot.order_id,
            correlation_id=body["correlation_id"],
            causation_id=uuid.UUID(body["event_id"]),
            producer="payment-service",
            payload=OrderPaidPayload(
                session_id=f"cs_test_{uuid.uuid4().hex[:12]}",
                amount=snapshot.amount,
                currency=snapshot.currency,
                order=snapshot,
            ),
        )

    # databases (read only) ------------------------------------------------------------------------

    async def sql(self, service: str, query: str, *args: Any) -> list[asyncpg.Record]:
        """Read a service's database through one small pool per database (the server is shared)."""
        pool = self._pools.get(service)
        if pool is None:
            dsn = self.config.database_url(service).replace("postgresql+asyncpg://", "postgresql://")
            pool = self._pools[service] = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
        async with pool.acquire() as connection:
            return list(await connection.fetch(query, *args))

    async def aclose(self) -> None:
        for pool in self._pools.values():
            await pool.close()
        self._pools.clear()

    async def provisioner_events(self, order: PaidOrder, event_type: str) -> list[dict[str, Any]]:
        rows = await self.sql(
            "provisioner",
            "SELECT body FROM outbox WHERE message_type = $1 AND order_id = $2 ORDER BY created_at",
            event_type,
            uuid.UUID(order.order_id),
        )
        return [json.loads(bytes(r["body"])) for r in rows]

    async def trail(self, order: PaidOrder) -> list[str]:
        """The event types status-service stored for the order (its history)."""
        rows = await self.sql(
            "status-service",
            "SELECT event_type FROM order_events WHERE order_id = $1 ORDER BY occurred_at, event_id",
            uuid.UUID(order.order_id),
        )
        return [str(r["event_type"]) for r in rows]

    async def failure(self, order: PaidOrder, *, timeout: float = 60.0) -> dict[str, Any]:
        """The order's one ProvisionFailed payload, once the customer sees FAILED."""
        await self.status(order, "FAILED", timeout=timeout)
        events = await eventually(lambda: self._nonempty(self.provisioner_events(order, "ProvisionFailed")))
        assert len(events) == 1, events
        payload: dict[str, Any] = events[0]["payload"]
        return payload

    @staticmethod
    async def _nonempty(rows: Any) -> Any:
        found = await rows
        return found or None

    async def metrics(self, url: str) -> str:
        return (await self.api.http.get(f"{url}/metrics")).text


def metric(text: str, name: str, **labels: str) -> float:
    """The sum of a Prometheus sample family's values whose labels include ``labels``."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        head, _, value = line.rpartition(" ")
        if all(f'{k}="{v}"' in head for k, v in labels.items()):
            total += float(value)
    return total


@asynccontextmanager
async def harness_on(stack: Stack) -> AsyncIterator[Harness]:
    """A ``Harness`` on ``stack`` with the panel's faults cleared before and after (a test's fixture)."""
    async with Api(stack.config) as api:
        harness = Harness(stack, api)
        await harness.reset_panel_faults()
        try:
            yield harness
        finally:
            await harness.reset_panel_faults()
            await harness.aclose()


@asynccontextmanager
async def probe_on(stack: Stack) -> AsyncIterator[BrokerProbe]:
    """A broker probe on ``stack``'s namespace (publish to a queue, peek, depth)."""
    probe = BrokerProbe(stack.config.namespace)
    await probe.connect()
    try:
        yield probe
    finally:
        await probe.close()


def second_provisioner(config: StackConfig) -> AbstractContextManager[str]:
    """Another provisioner process on the same databases and queues (as a second replica); yields its URL."""
    return replica(config, "provisioner")


async def spawnctl(namespace: str, *args: str, broker_url: str | None = None) -> CliResult:
    """Run the installed ``spawnctl`` console script, as an operator would, against ``namespace``."""
    env = {"SPAWNPOINT_NAMESPACE": namespace}
    if broker_url is not None:
        env["BROKER_URL"] = broker_url
    return await run_cli("spawnctl", *args, env=env)
