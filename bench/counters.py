"""What a run cost, read from outside the processes that did the work: CPU time and peak memory from
``/proc``, transactions from PostgreSQL's statistics. Nothing is counted inside the services.

PostgreSQL 15 flushes a backend's counters at most once a second, and an idle backend's within 10 s
(``PGSTAT_IDLE_INTERVAL``), or when it exits. So ``settled_commits`` waits that long after the work
before reading, and ``commits`` can wait until the counts have not moved for ``settle`` seconds (enough
once the backends have exited).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Sequence

import asyncpg
from sqlalchemy.engine import make_url

from setup_infra import pg_server_url

CLK_TCK = os.sysconf("SC_CLK_TCK")
STATS_IDLE_FLUSH_SECONDS = 10.0
"""PostgreSQL 15's ``PGSTAT_IDLE_INTERVAL``: an idle backend's counters are flushed within this."""


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def peak_rss_mb(pid: int) -> float:
    """Peak resident memory (``VmHWM``) of process ``pid``, MB."""
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def database_name(url: str) -> str:
    return str(make_url(url).database)


async def commits(databases: Sequence[str], *, settle: float = 0.0, timeout: float = 15.0) -> int:
    """``pg_stat_database.xact_commit`` summed over ``databases`` (names), read from the ``postgres``
    database so that the reading itself is not counted. With ``settle``, read again until the sum has not
    changed for that long (at most ``timeout``): the counters of backends that just went idle or exited."""
    dsn = make_url(pg_server_url()).set(drivername="postgresql", database="postgres")
    conn = await asyncpg.connect(dsn.render_as_string(hide_password=False))
    try:

        async def read() -> int:
            await conn.execute("SELECT pg_stat_clear_snapshot()")
            value = await conn.fetchval(
                "SELECT coalesce(sum(xact_commit), 0) FROM pg_stat_database WHERE datname = ANY($1)", list(databases)
            )
            return int(value)

        value = await read()
        if settle <= 0:
            return value
        deadline = time.monotonic() + timeout
        stable_since = time.monotonic()
        while time.monotonic() < deadline:
            await asyncio.sleep(min(0.25, settle))
            again = await read()
            if again != value:
                value, stable_since = again, time.monotonic()
            elif time.monotonic() - stable_since >= settle:
                break
        return value
    finally:
        await conn.close()


async def settled_commits(databases: Sequence[str]) -> int:
    """``commits`` once every backend that just went idle has flushed its counters."""
    await asyncio.sleep(STATS_IDLE_FLUSH_SECONDS + 1)
    return await commits(databases)
