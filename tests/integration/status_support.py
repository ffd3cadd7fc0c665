"""Helpers for the status tests: reading a Server-Sent Events stream to a deadline, walking an order
through the real system, a second status-service process, and the real ``spawnctl`` console script.

Everything reaches the system the way a browser, an operator or a second replica would: over HTTP and
by running the installed binaries. Nothing patches the services' code.
"""

from __future__ import annotations

import asyncio
import json
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from httpx_sse import EventSource, ServerSentEvent

from devstack import StackConfig, replica

from .support import Api, CliResult, run_cli


@dataclass(frozen=True)
class Frame:
    """One ``status`` frame of the stream."""

    id: int
    body: dict[str, Any]

    @property
    def status(self) -> str:
        return str(self.body["status"])


class Frames:
    """The status frames of one open stream, read to a deadline (heartbeat comments are skipped)."""

    def __init__(self, source: EventSource) -> None:
        self._events = source.aiter_sse()

    async def next(self, timeout: float = 30.0) -> Frame:
        async with asyncio.timeout(timeout):
            while True:
                event: ServerSentEvent = await anext(self._events)
                if event.event == "status":
                    return Frame(int(event.id), json.loads(event.data))

    async def until(self, status: str, timeout: float = 60.0) -> list[Frame]:
        """Every frame up to and including the first with ``status``."""
        frames: list[Frame] = []
        deadline = time.monotonic() + timeout
        while not frames or frames[-1].status != status:
            frames.append(await self.next(max(0.1, deadline - time.monotonic())))
        return frames


def distinct(values: list[str]) -> list[str]:
    """``[a, a, b, a]`` -> ``[a, b, a]``: what a customer would notice change."""
    return [v for i, v in enumerate(values) if i == 0 or values[i - 1] != v]


async def place_order(api: Api, token: str) -> str:
    """A new order, once status-service has it (PENDING)."""
    placed = await api.place_order(token)
    assert placed.status_code == 201, placed.text
    order_id: str = placed.json()["id"]
    await api.wait_status(token, order_id, "PENDING")
    return order_id


async def pay(api: Api, token: str, order_id: str) -> None:
    """Open the checkout and let the Stripe stand-in take the payment (the webhook follows)."""
    checkout = await api.open_checkout(token, order_id)
    assert checkout.status_code == 201, checkout.text
    paid = await api.stripe_pay(checkout.json()["session_id"])
    assert paid.status_code == 200, paid.text


def second_status_service(config: StackConfig) -> AbstractContextManager[str]:
    """Another status-service process on the same database and queue (a second replica); yields its URL."""
    return replica(config, "status-service", env={"DB_POOL_SIZE": "3"})  # the test stacks share max_connections


async def spawnctl_trail(status_url: str, *args: str, token: str | None = None) -> CliResult:
    """Run ``spawnctl order trail ...`` as an operator would (the token minted from JWT_SECRET unless given)."""
    env = {"STATUS_SERVICE_URL": status_url, "COLUMNS": "220", "SPAWNCTL_TOKEN": token or ""}
    return await run_cli("spawnctl", "order", "trail", *args, env=env, timeout=60)


def trail_cli(status_url: str, *args: str) -> CliResult:
    """``spawnctl order trail ...`` run in this process (Typer's runner), against the real status-service."""
    from typer.testing import CliRunner

    from spawnctl.cli import app

    result = CliRunner().invoke(
        app, ["order", "trail", *args], env={"STATUS_SERVICE_URL": status_url, "COLUMNS": "220", "NO_COLOR": "1"}
    )
    return CliResult(result.exit_code, result.stdout, result.stderr)
