"""The bench's own client of the system under test: places and pays orders, reads the stand-ins'
control APIs and the services' databases. Used to set scenarios up and to collect per-stage timestamps;
never inside a timed section unless a scenario says so."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, TypeVar

import asyncpg

from devstack import Stack
from spawnpoint_kit.auth import mint_token
from spawnpoint_kit.db import asyncpg_dsn
from spawnpoint_kit.settings import CommonSettings

from .http1 import Connection, Response

T = TypeVar("T")


def token_for(user: str) -> str:
    return mint_token(CommonSettings().jwt_secret.get_secret_value(), sub=user, email=f"{user}@bench.test")


class Pool:
    """A few keep-alive connections to one service, used concurrently."""

    def __init__(self, url: str, size: int = 16) -> None:
        host, port = url.removeprefix("http://").split(":")
        self._idle: asyncio.Queue[Connection] = asyncio.Queue()
        for _ in range(size):
            self._idle.put_nowait(Connection(host, int(port)))

    async def request(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        conn = await self._idle.get()
        try:
            all_headers = dict(headers or {})
            payload = b""
            if body is not None:
                payload = json.dumps(body).encode()
                all_headers["Content-Type"] = "application/json"
            if token:
                all_headers["Authorization"] = f"Bearer {token}"
            return await conn.request(method, path, headers=all_headers, body=payload)
        finally:
            self._idle.put_nowait(conn)

    retries = 0
    """503 answers retried (a service saying "busy, retry" under overload), counted for the report."""

    async def json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self.request(method, path, **kwargs)
        for attempt in range(6):
            if response.status != 503:
                break
            Pool.retries += 1
            await asyncio.sleep(0.2 * 2**attempt)  # backoff before retrying, as a frontend would
            response = await self.request(method, path, **kwargs)
        if response.status >= 400:
            raise RuntimeError(f"{method} {path} answered {response.status}: {response.body[:300]!r}")
        return json.loads(response.body) if response.body else None

    async def close(self) -> None:
        while not self._idle.empty():
            await self._idle.get_nowait().close()


async def bounded(items: Iterable[T], work: Callable[[T], Awaitable[Any]], *, concurrency: int) -> list[Any]:
    semaphore = asyncio.Semaphore(concurrency)

    async def one(item: T) -> Any:
        async with semaphore:
            return await work(item)

    return list(await asyncio.gather(*(one(i) for i in items)))


class System:
    """Handles on a running stack."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        config = stack.config
        self.orders = Pool(config.url("order-service"))
        self.payments = Pool(config.url("payment-service"))
        self.status = Pool(config.url("status-service"))
        self.stripe = Pool(config.url("stripe-fake"))
        self.panel = Pool(config.url("panel-fake"))
        self.provisioner = Pool(config.url("provisioner"), size=2)
        self.by_service = {
            "order-service": self.orders,
            "payment-service": self.payments,
            "provisioner": self.provisioner,
            "status-service": self.status,
        }

    async def close(self) -> None:
        for pool in (self.orders, self.payments, self.status, self.stripe, self.panel, self.provisioner):
            await pool.close()

    async def make_room_on_panel(self, servers: int) -> None:
        await make_room(self.panel, servers)

    async def place_order(self, user: str, *, plan: str = "starter") -> str:
        order = await self.orders.json(
            "POST",
            "/orders",
            token=token_for(user),
            headers={"Idempotency-Key": str(uuid.uuid4())},
            body={"game_id": "minecraft-paper", "plan_id": plan, "server_name": f"bench {user}"},
        )
        return str(order["id"])

    async def open_checkout(self, user: str, order_id: str) -> str:
        session = await self.payments.json(
            "POST", "/checkout-sessions", token=token_for(user), body={"order_id": order_id}
        )
        return str(session["session_id"])

    async def pay(self, session_id: str) -> None:
        await self.stripe.json("POST", f"/_fake/sessions/{session_id}/pay", body={"outcome": "paid"})

    async def query(self, service: str, sql: str, *args: Any) -> Sequence[asyncpg.Record]:
        conn = await asyncpg.connect(asyncpg_dsn(self.stack.config.database_url(service)))
        try:
            rows: Sequence[asyncpg.Record] = await conn.fetch(sql, *args)
            return rows
        finally:
            await conn.close()

    async def count_ready(self) -> int:
        rows = await self.query("status-service", "SELECT count(*) FROM order_status WHERE phase = 'ready'")
        return int(rows[0][0])


async def make_room(panel: Pool, servers: int) -> None:
    """The panel stand-in's seeded node has 1,000 ports and finite memory: give it room for ``servers``
    more (through its control API)."""
    await panel.json("POST", "/_fake/nodes/1/capacity", body={"memory": 10**9, "disk": 10**10, "cpu": 0})
    first = 30000
    while servers > 0:
        chunk = min(servers, 1000)
        await panel.json(
            "POST", "/_fake/nodes/1/allocations", body={"ip": "10.0.0.5", "ports": f"{first}-{first + chunk - 1}"}
        )
        first += chunk
        servers -= chunk


def seconds_between(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return (end - start).total_seconds()
