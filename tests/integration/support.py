"""Test helpers: an HTTP client for the stack's APIs and the stand-ins' control APIs, and a broker probe.

Waiting is always polling to a deadline, never a fixed sleep.
"""

from __future__ import annotations

import asyncio
import os
import re
import uuid
from dataclasses import dataclass
from typing import Any

import aio_pika
import httpx

from devstack import BIN, ROOT, SERVICES, StackConfig
from spawnpoint_kit.settings import CommonSettings
from spawnpoint_kit.testing import eventually as eventually  # re-exported for the test modules

_HTTP_500 = re.compile(r'http_requests_total\{[^}]*status="500"[^}]*\} ([0-9.e+]+)')


class Api:
    """Thin client for the services and the stand-ins of one stack."""

    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.http = httpx.AsyncClient(timeout=30.0)

    async def __aenter__(self) -> Api:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.http.aclose()

    def url(self, service: str, path: str) -> str:
        return self.config.url(service) + path

    @staticmethod
    def auth(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    # order-service --------------------------------------------------------------------------------

    async def place_order(
        self,
        token: str,
        *,
        game_id: str = "minecraft-paper",
        plan_id: str = "starter",
        server_name: str = "Integration world",
        settings: dict[str, str] | None = None,
        key: str | None = None,
        period: str | None = None,
    ) -> httpx.Response:
        body: dict[str, Any] = {
            "game_id": game_id,
            "plan_id": plan_id,
            "server_name": server_name,
            "settings": settings or {},
        }
        if period is not None:
            body["period"] = period
        return await self.http.post(
            self.url("order-service", "/orders"),
            headers={**self.auth(token), "Idempotency-Key": key or str(uuid.uuid4())},
            json=body,
        )

    async def order(self, token: str, order_id: str) -> httpx.Response:
        return await self.http.get(self.url("order-service", f"/orders/{order_id}"), headers=self.auth(token))

    # payment-service ------------------------------------------------------------------------------

    async def open_checkout(self, token: str, order_id: str) -> httpx.Response:
        return await self.http.post(
            self.url("payment-service", "/checkout-sessions"), headers=self.auth(token), json={"order_id": order_id}
        )

    # status-service -------------------------------------------------------------------------------

    async def status(self, token: str, order_id: str) -> httpx.Response:
        return await self.http.get(self.url("status-service", f"/orders/{order_id}/status"), headers=self.auth(token))

    async def wait_status(self, token: str, order_id: str, wanted: str, *, timeout: float = 60.0) -> dict[str, Any]:
        async def probe() -> dict[str, Any] | None:
            response = await self.status(token, order_id)
            if response.status_code == 200 and response.json()["status"] == wanted:
                body: dict[str, Any] = response.json()
                return body
            return None

        return await eventually(probe, timeout=timeout, what=f"status {wanted} of {order_id}")

    # Stripe stand-in ------------------------------------------------------------------------------

    async def stripe_pay(self, session_id: str, outcome: str = "paid") -> httpx.Response:
        return await self.http.post(
            self.url("stripe-fake", f"/_fake/sessions/{session_id}/pay"), json={"outcome": outcome}
        )

    async def stripe_events(self, **params: str) -> list[dict[str, Any]]:
        response = await self.http.get(self.url("stripe-fake", "/_fake/events"), params=params)
        response.raise_for_status()
        body = response.json()
        data: list[dict[str, Any]] = body["data"] if isinstance(body, dict) else body
        return data

    async def stripe_redeliver(self, event_id: str) -> httpx.Response:
        return await self.http.post(self.url("stripe-fake", f"/_fake/events/{event_id}/redeliver"))

    # panel stand-in -------------------------------------------------------------------------------

    async def panel_servers(self, external_id: str | None = None) -> list[dict[str, Any]]:
        params = {"external_id": external_id} if external_id is not None else {}
        response = await self.http.get(self.url("panel-fake", "/_fake/servers"), params=params)
        response.raise_for_status()
        servers: list[dict[str, Any]] = response.json()["servers"]
        return servers

    async def services_that_answered_500(self) -> dict[str, list[float]]:
        """Every service of this stack whose request counter holds a 500 (a 503 is an answer, a 500 a bug)."""
        found: dict[str, list[float]] = {}
        for service in SERVICES:
            counts = [float(v) for v in _HTTP_500.findall(await self.metrics(service))]
            if any(counts):
                found[service] = counts
        return found

    async def metrics(self, service: str) -> str:
        return (await self.http.get(self.url(service, "/metrics"))).text


class BrokerProbe:
    """Direct broker access for tests: publish raw messages, read dead-letter queues."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.connection: aio_pika.abc.AbstractRobustConnection | None = None

    async def connect(self) -> None:
        self.connection = await aio_pika.connect_robust(CommonSettings().broker_url.get_secret_value())

    async def close(self) -> None:
        if self.connection is not None:
            await self.connection.close()

    def queue(self, base: str) -> str:
        return f"{self.namespace}{base}"

    async def publish_to_queue(
        self, queue: str, body: bytes, *, message_id: str | None = None, headers: dict[str, Any] | None = None
    ) -> None:
        assert self.connection is not None
        channel = await self.connection.channel(publisher_confirms=True)
        try:
            await channel.default_exchange.publish(
                aio_pika.Message(
                    body,
                    message_id=message_id,
                    headers=headers or {},
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    content_type="application/json",
                ),
                routing_key=self.queue(queue),
                mandatory=True,
            )
        finally:
            await channel.close()

    async def peek(self, queue: str) -> list[aio_pika.abc.AbstractIncomingMessage]:
        """Every message in a queue, without consuming (fetched, then requeued by closing the channel)."""
        assert self.connection is not None
        channel = await self.connection.channel()
        messages: list[aio_pika.abc.AbstractIncomingMessage] = []
        try:
            q = await channel.declare_queue(self.queue(queue), passive=True)
            while True:
                message = await q.get(no_ack=False, fail=False)
                if message is None:
                    break
                messages.append(message)
        finally:
            await channel.close()
        return messages

    async def depth(self, queue: str) -> int:
        assert self.connection is not None
        channel = await self.connection.channel()
        try:
            q = await channel.declare_queue(self.queue(queue), passive=True)
            return int(q.declaration_result.message_count or 0)
        finally:
            await channel.close()


@dataclass(frozen=True)
class CliResult:
    code: int
    stdout: str
    stderr: str


async def run_cli(binary: str, *args: str, env: dict[str, str], timeout: float = 120.0) -> CliResult:
    """Run one of our console scripts as an operator would, and capture what it printed."""
    proc = await asyncio.create_subprocess_exec(
        str(BIN / binary),
        *args,
        env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1", **env},
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=timeout)
    assert proc.returncode is not None
    return CliResult(proc.returncode, out.decode(), err.decode())
