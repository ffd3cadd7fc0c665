"""status-polling: 1,000 concurrent pollers on ``GET /orders/{id}/status``, with and without
``If-None-Match``; then 1,000 open Server-Sent Event streams and the time one change takes to reach all.

Orders are real (placed through order-service, so the read model was built by the projection). Every
poller uses its order's owner token, over its own keep-alive connection, from a separate process. The
reference is a bare endpoint on the same server stack (uvicorn + FastAPI) returning a constant JSON body,
under the same load. For the streams, one order is watched by 1,000 streams (one customer's many tabs is
the worst case for fan-out); the change is a real payment, and the time is from the change's commit in
status-service (``order_status_changes.changed_at``) to each stream receiving its frame.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

from devstack import Stack, free_port

from ..client import System, bounded, token_for
from ..http1 import Connection
from ..load import LoadResult, Request, closed_loop, fixed_rate
from ..processes import uvicorn_app
from ..stats import Figure, ScenarioResult, latency_ms, percentile
from ..system import running_system

TARGET_RATE = 3000.0
TARGET_P99_MS = 100.0
TARGET_RATIO = 0.5
TARGET_FANOUT_P99_MS = 200.0


async def _orders(stack: Stack, count: int) -> list[tuple[str, str]]:
    system = System(stack)
    try:

        async def one(i: int) -> tuple[str, str]:
            user = f"poll-{i}"
            return await system.place_order(user), user

        placed = await bounded(range(count), one, concurrency=16)
        ids = [uuid.UUID(o) for o, _ in placed]
        while True:
            rows = await system.query(
                "status-service", "SELECT count(*) FROM order_status WHERE order_id = ANY($1)", ids
            )
            if rows[0][0] == len(ids):
                return placed
            await asyncio.sleep(0.1)
    finally:
        await system.close()


async def _etags(stack: Stack, orders: list[tuple[str, str]]) -> dict[str, str]:
    system = System(stack)
    try:
        tags = {}
        for order_id, user in orders:
            response = await system.status.request("GET", f"/orders/{order_id}/status", token=token_for(user))
            tags[order_id] = response.headers["etag"]
        return tags
    finally:
        await system.close()


def _requests(orders: list[tuple[str, str]], total: int, etags: dict[str, str] | None) -> list[Request]:
    tokens = {user: token_for(user) for _, user in orders}
    out: list[Request] = []
    for i in range(total):
        order_id, user = orders[i % len(orders)]
        headers = {"Authorization": f"Bearer {tokens[user]}"}
        if etags is not None:
            headers["If-None-Match"] = etags[order_id]
        out.append(("GET", f"/orders/{order_id}/status", headers, b""))
    return out


# -- streams ---------------------------------------------------------------------------------------------


async def _watch(
    host: str, port: int, path: str, token: str, streams: int, version: int, timeout: float
) -> list[float]:
    received: list[float] = []

    async def one() -> None:
        conn = Connection(host, port)
        try:
            current_id = None
            async for line in conn.stream(
                path, headers={"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
            ):
                if line.startswith(b"id:"):
                    current_id = int(line[3:].strip())
                elif line == b"" and current_id is not None and current_id >= version:
                    received.append(time.time())
                    return
        finally:
            await conn.close()

    tasks = [asyncio.create_task(one()) for _ in range(streams)]
    await asyncio.wait(tasks, timeout=timeout)
    for task in tasks:
        task.cancel()
    return received


def _run_watch(host: str, port: int, path: str, token: str, streams: int, version: int, timeout: float) -> list[float]:
    return asyncio.run(_watch(host, port, path, token, streams, version, timeout))


async def _open_streams(stack: Stack) -> int:
    system = System(stack)
    try:
        text = (await system.status.request("GET", "/metrics")).body.decode()
        for line in text.splitlines():
            if line.startswith("status_open_streams "):
                return int(float(line.split()[1]))
        return 0
    finally:
        await system.close()


async def _trigger_change(stack: Stack, order_id: str, user: str) -> None:
    system = System(stack)
    try:
        session_id = await system.open_checkout(user, order_id)
        await system.pay(session_id)
    finally:
        await system.close()


async def _changed_at(stack: Stack, order_id: str, version: int) -> float:
    system = System(stack)
    try:
        while True:
            rows = await system.query(
                "status-service",
                "SELECT extract(epoch FROM changed_at) FROM order_status_changes WHERE order_id = $1 AND version = $2",
                uuid.UUID(order_id),
                version,
            )
            if rows:
                return float(rows[0][0])
            await asyncio.sleep(0.05)
    finally:
        await system.close()


def _fanout(stack: Stack, order_id: str, user: str, streams: int) -> dict[str, float]:
    port = stack.config.ports["status-service"]
    path = f"/orders/{order_id}/events"
    current = json.loads(asyncio.run(_status_body(stack, order_id, user)))
    version = int(current.get("version") or 0) + 1
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        future = pool.submit(_run_watch, "127.0.0.1", port, path, token_for(user), streams, version, 120.0)
        deadline = time.monotonic() + 60
        while asyncio.run(_open_streams(stack)) < streams:
            if time.monotonic() > deadline:
                raise TimeoutError("the streams did not all open")
            time.sleep(0.2)
        asyncio.run(_trigger_change(stack, order_id, user))
        received = future.result()
    committed = asyncio.run(_changed_at(stack, order_id, version))
    delays = [max(0.0, t - committed) for t in received]
    lat = latency_ms(delays)
    return {
        "streams": streams,
        "received": len(received),
        **lat,
        "all_ms": round(max(delays) * 1000, 1) if delays else float("nan"),
    }


async def _status_body(stack: Stack, order_id: str, user: str) -> bytes:
    system = System(stack)
    try:
        return (await system.status.request("GET", f"/orders/{order_id}/status", token=token_for(user))).body
    finally:
        await system.close()


# -- scenario --------------------------------------------------------------------------------------------


def run(*, pollers: int = 1000, streams: int = 1000, requests: int = 30000, orders: int = 200) -> ScenarioResult:
    result = ScenarioResult(
        "status-polling", {"pollers": pollers, "streams": streams, "requests": requests, "orders": orders}
    )
    with running_system() as stack:
        placed = asyncio.run(_orders(stack, orders))
        etags = asyncio.run(_etags(stack, placed))
        port = stack.config.ports["status-service"]
        closed_loop("127.0.0.1", port, _requests(placed, min(requests, 3000), None), concurrency=pollers)  # warm up
        plain: LoadResult = closed_loop("127.0.0.1", port, _requests(placed, requests, None), concurrency=pollers)
        cached: LoadResult = closed_loop("127.0.0.1", port, _requests(placed, requests, etags), concurrency=pollers)
        # Real pollers wait between polls: 1,000 of them offering 3,000 requests per second in all.
        offered = int(TARGET_RATE * 10)
        paced: LoadResult = fixed_rate(
            "127.0.0.1", port, _requests(placed, offered, None), rate=TARGET_RATE, connections=pollers
        )
        watched_order, watched_user = placed[0]
        fanout = _fanout(stack, watched_order, watched_user, streams)
    ref_port = free_port()
    with uvicorn_app("bench.reference_apps:constant_app", ref_port):
        closed_loop("127.0.0.1", ref_port, _requests(placed, min(requests, 3000), None), concurrency=pollers)
        reference: LoadResult = closed_loop(
            "127.0.0.1", ref_port, _requests(placed, requests, None), concurrency=pollers
        )
        ref_paced: LoadResult = fixed_rate(
            "127.0.0.1", ref_port, _requests(placed, offered, None), rate=TARGET_RATE, connections=pollers
        )

    def summary(r: LoadResult) -> dict[str, object]:
        return {
            "throughput_per_s": round(r.throughput, 1),
            "statuses": r.statuses,
            "errors": r.errors,
            **latency_ms(r.latencies),
        }

    result.details = {
        "polling_closed_loop": summary(plain),
        "polling_if_none_match_closed_loop": summary(cached),
        "polling_3000_per_s_offered": summary(paced),
        "reference_constant_closed_loop": summary(reference),
        "reference_constant_3000_per_s_offered": summary(ref_paced),
        "streams": fanout,
    }
    lat, lat304, ref_lat = latency_ms(paced.latencies), latency_ms(cached.latencies), latency_ms(ref_paced.latencies)
    result.add(
        Figure(
            "polls/s, 1,000 pollers flat out",
            plain.throughput,
            "req/s",
            reference.throughput,
            "constant endpoint",
            f">= {TARGET_RATE:.0f}/s, >= {TARGET_RATIO}x ref",
            plain.ok(200) == requests
            and plain.throughput >= TARGET_RATE
            and plain.throughput >= TARGET_RATIO * reference.throughput,
        )
    )
    result.add(
        Figure(
            "polls/s with If-None-Match (304)",
            cached.throughput,
            "req/s",
            reference.throughput,
            "constant endpoint",
            f">= {TARGET_RATE:.0f}/s, >= {TARGET_RATIO}x ref",
            cached.ok(304) == requests
            and cached.throughput >= TARGET_RATE
            and cached.throughput >= TARGET_RATIO * reference.throughput,
        )
    )
    result.add(
        Figure(
            "poll p99 at 3,000/s offered",
            lat["p99_ms"],
            "ms",
            ref_lat["p99_ms"],
            "constant endpoint",
            f"<= {TARGET_P99_MS:.0f} ms",
            paced.ok(200) == len(paced.latencies) and lat["p99_ms"] <= TARGET_P99_MS,
        )
    )
    result.add(Figure("poll p50 at 3,000/s offered", lat["p50_ms"], "ms", ref_lat["p50_ms"], "constant endpoint"))
    result.add(Figure("304 p99, flat out", lat304["p99_ms"], "ms"))
    result.add(
        Figure(
            f"one change to {streams} streams, p99",
            fanout["p99_ms"],
            "ms",
            None,
            None,
            f"<= {TARGET_FANOUT_P99_MS:.0f} ms",
            fanout["received"] == streams and fanout["p99_ms"] <= TARGET_FANOUT_P99_MS,
        )
    )
    return result


__all__ = ["percentile", "run"]
