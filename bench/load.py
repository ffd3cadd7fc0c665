"""Load generation in a separate process (the figures must not include the orchestrator's own work).

``closed_loop`` keeps ``concurrency`` requests in flight, each worker on its own keep-alive connection,
until every prepared request was sent; ``fixed_rate`` sends requests at a steady rate (open loop) so that
latency is measured without queueing in the client. Both return per-request latencies and statuses.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context

from .http1 import Connection

Request = tuple[str, str, dict[str, str], bytes]
"""method, path, headers, body"""


@dataclass
class LoadResult:
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0
    elapsed: float = 0.0

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0

    def ok(self, *codes: int) -> int:
        return sum(n for status, n in self.statuses.items() if status in codes)


async def _closed_loop(host: str, port: int, requests: Sequence[Request], concurrency: int) -> LoadResult:
    result = LoadResult()
    queue = list(reversed(requests))

    async def worker() -> None:
        conn = Connection(host, port)
        try:
            while queue:
                method, path, headers, body = queue.pop()
                data = conn.encode(method, path, headers, body)
                started = time.perf_counter()
                try:
                    response = await conn.send(data)
                except (OSError, ConnectionError, asyncio.IncompleteReadError):
                    result.errors += 1
                    continue
                result.latencies.append(time.perf_counter() - started)
                result.statuses[response.status] = result.statuses.get(response.status, 0) + 1
        finally:
            await conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.elapsed = time.perf_counter() - started
    return result


async def _fixed_rate(host: str, port: int, requests: Sequence[Request], rate: float, connections: int) -> LoadResult:
    result = LoadResult()
    pool: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(connections):
        pool.put_nowait(Connection(host, port))

    async def send(request: Request) -> None:
        conn = await pool.get()
        method, path, headers, body = request
        started = time.perf_counter()
        try:
            response = await conn.request(method, path, headers=headers, body=body)
            result.latencies.append(time.perf_counter() - started)
            result.statuses[response.status] = result.statuses.get(response.status, 0) + 1
        except (OSError, ConnectionError, asyncio.IncompleteReadError):
            result.errors += 1
        finally:
            pool.put_nowait(conn)

    tasks = []
    started = time.perf_counter()
    for i, request in enumerate(requests):
        due = started + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(send(request)))
    await asyncio.gather(*tasks)
    result.elapsed = time.perf_counter() - started
    while not pool.empty():
        await pool.get_nowait().close()
    return result


def _run_closed(host: str, port: int, requests: Sequence[Request], concurrency: int) -> LoadResult:
    return asyncio.run(_closed_loop(host, port, requests, concurrency))


def _run_fixed(host: str, port: int, requests: Sequence[Request], rate: float, connections: int) -> LoadResult:
    return asyncio.run(_fixed_rate(host, port, requests, rate, connections))


def closed_loop(host: str, port: int, requests: Sequence[Request], *, concurrency: int) -> LoadResult:
    """Run a closed-loop load from a separate process and return its measurements."""
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(_run_closed, host, port, list(requests), concurrency).result()


def fixed_rate(host: str, port: int, requests: Sequence[Request], *, rate: float, connections: int = 64) -> LoadResult:
    """Send requests at ``rate`` per second from a separate process and return the measurements."""
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(_run_fixed, host, port, list(requests), rate, connections).result()
