"""panel-outage isolation: the webhook's p99 while the panel is healthy, 2 s slow, and down; then the time
for the backlog of orders paid during the outage to drain once the panel is back, with none lost or doubled.

Orders flow at a steady rate through the real system in each phase (placed, checked out, paid on the
Stripe stand-in, which delivers the signed webhooks). The webhook latency is what Stripe sees: the stand-in
records every delivery attempt's duration. The panel stand-in is made slow (every API request 2 s late) or
down (every API request refused) through its control API. The provisioner runs with short broker retry
delays (2, 4, 8 s) so that a backlog is retried within the measurement rather than after ten minutes.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from devstack import Stack

from ..client import System
from ..stats import Figure, ScenarioResult, latency_ms
from ..system import running_system

TARGET_RATIO = 1.2


async def _phase(stack: Stack, *, tag: str, orders: int, rate: float) -> tuple[list[str], list[float]]:
    system = System(stack)
    try:
        started_at = time.time()

        async def one(i: int) -> str:
            user = f"{tag}-{i}"
            order_id = await system.place_order(user)
            await system.pay(await system.open_checkout(user, order_id))
            return order_id

        tasks = []
        started = time.monotonic()
        for i in range(orders):
            delay = started + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i)))
        order_ids = list(await asyncio.gather(*tasks))
        await asyncio.sleep(2)  # let the last deliveries of the phase land before reading them
        deliveries = await system.stripe.json("GET", "/_fake/deliveries?event_type=checkout.session.completed")
        durations = [
            float(a["duration_ms"]) / 1000
            for a in deliveries["data"]
            if a.get("duration_ms") is not None and float(a.get("timestamp") or 0) >= started_at - 1
        ]
        return order_ids, durations
    finally:
        await system.close()


async def _panel(stack: Stack, body: dict[str, Any] | None) -> None:
    system = System(stack)
    try:
        if body is None:
            await system.panel.json("DELETE", "/_fake/faults")
        else:
            await system.panel.json("POST", "/_fake/faults", body=body)
    finally:
        await system.close()


async def _drain(stack: Stack, order_ids: list[str], timeout: float) -> float:
    system = System(stack)
    ids = [uuid.UUID(o) for o in order_ids]
    started = time.monotonic()
    try:
        while time.monotonic() - started < timeout:
            rows = await system.query(
                "status-service", "SELECT count(*) FROM order_status WHERE phase = 'ready' AND order_id = ANY($1)", ids
            )
            if rows[0][0] == len(ids):
                return time.monotonic() - started
            await asyncio.sleep(0.2)
        raise TimeoutError(f"the backlog did not drain within {timeout:.0f}s")
    finally:
        await system.close()


async def _servers_per_order(stack: Stack, order_ids: list[str]) -> dict[int, int]:
    system = System(stack)
    try:
        servers = (await system.panel.json("GET", "/_fake/servers"))["servers"]
    finally:
        await system.close()
    per_order: dict[str, int] = {}
    for server in servers:
        per_order[server.get("external_id")] = per_order.get(server.get("external_id"), 0) + 1
    histogram: dict[int, int] = {}
    for order_id in order_ids:
        n = per_order.get(order_id, 0)
        histogram[n] = histogram.get(n, 0) + 1
    return histogram


def run(*, orders: int = 900, rate: float = 5.0) -> ScenarioResult:
    per_phase = max(10, orders // 3)
    result = ScenarioResult(
        "isolation", {"orders_per_phase": per_phase, "rate_per_s": rate, "provision_retry_delays_s": "2,4,8"}
    )
    with running_system(
        per_process_env={
            "provisioner": {
                "PANEL_RATE_LIMIT_PER_MINUTE": "1000000",
                "PANEL_RATE_LIMIT_BURST": "1000",
                "INSTALL_POLL_SECONDS": "0.2",
                "PROVISION_RETRY_DELAYS": "2,4,8",
                "PANEL_TIMEOUT_SECONDS": "10",
            }
        }
    ) as stack:
        asyncio.run(_make_room(stack, 4 * per_phase + 50))
        asyncio.run(_phase(stack, tag="warm-up", orders=max(10, per_phase // 4), rate=rate))
        healthy_orders, healthy = asyncio.run(_phase(stack, tag="healthy", orders=per_phase, rate=rate))
        asyncio.run(_panel(stack, {"latency_seconds": 2.0, "path_prefix": "/api/"}))
        slow_orders, slow = asyncio.run(_phase(stack, tag="slow", orders=per_phase, rate=rate))
        asyncio.run(_panel(stack, None))
        asyncio.run(_panel(stack, {"down": True}))
        down_orders, down = asyncio.run(_phase(stack, tag="down", orders=per_phase, rate=rate))
        asyncio.run(_panel(stack, {"down": False}))
        asyncio.run(_panel(stack, None))
        backlog = slow_orders + down_orders
        drained = asyncio.run(_drain(stack, healthy_orders + backlog, timeout=600))
        servers = asyncio.run(_servers_per_order(stack, healthy_orders + backlog))

    h, s, d = latency_ms(healthy), latency_ms(slow), latency_ms(down)
    result.details = {
        "webhook_healthy": h,
        "webhook_panel_slow": s,
        "webhook_panel_down": d,
        "backlog_orders": len(backlog),
        "drain_seconds": round(drained, 1),
        "servers_per_order_histogram": servers,
    }
    exactly_one = servers == {1: len(healthy_orders) + len(backlog)}
    result.add(Figure("webhook p95, panel healthy", h["p95_ms"], "ms"))
    result.add(Figure("webhook p95, panel 2 s slow", s["p95_ms"], "ms", h["p95_ms"], "panel healthy"))
    result.add(Figure("webhook p95, panel down", d["p95_ms"], "ms", h["p95_ms"], "panel healthy"))
    result.add(Figure("webhook p99, panel healthy", h["p99_ms"], "ms"))
    result.add(
        Figure(
            "webhook p99, panel 2 s slow",
            s["p99_ms"],
            "ms",
            h["p99_ms"],
            "panel healthy",
            f"<= {TARGET_RATIO}x healthy",
            s["p99_ms"] <= TARGET_RATIO * h["p99_ms"],
        )
    )
    result.add(
        Figure(
            "webhook p99, panel down",
            d["p99_ms"],
            "ms",
            h["p99_ms"],
            "panel healthy",
            f"<= {TARGET_RATIO}x healthy",
            d["p99_ms"] <= TARGET_RATIO * h["p99_ms"],
        )
    )
    result.add(Figure("backlog drain time", drained, "s", None, None, "no order lost or doubled", exactly_one))
    return result


async def _make_room(stack: Stack, servers: int) -> None:
    system = System(stack)
    try:
        await system.make_room_on_panel(servers)
    finally:
        await system.close()
