"""What one consumer transaction of the kit costs in CPU: the unit of work's begin, inbox claim, one staged
event, commit, against the running PostgreSQL (a throw-away database).

Each round is what every delivery of every service pays before its handler does anything: ``claim`` the
inbox key, ``publish`` one event (staged in the outbox at commit) and ``commit``. The figure is this
process's CPU (``time.process_time``) per round, which is what the services' CPU per order is made of;
PostgreSQL's own CPU is not in it. Run it against the kit as it is and against an older kit::

    scripts/setup_env.sh .venv/bin/python shared/kit/benchmarks/unit_of_work_cost.py
    git archive HEAD shared/kit/src | tar -x -C /tmp/kit-before
    PYTHONPATH=/tmp/kit-before/shared/kit/src scripts/setup_env.sh .venv/bin/python \
        shared/kit/benchmarks/unit_of_work_cost.py
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid

from sqlmodel import SQLModel

import spawnpoint_kit.messaging.inbox
import spawnpoint_kit.messaging.outbox  # noqa: F401  (register the tables)
from spawnpoint_contracts import PaymentProcessing, PaymentProcessingPayload
from spawnpoint_kit.db import drop_database, ensure_database, make_engine, make_session_factory
from spawnpoint_kit.messaging.topology import Topology
from spawnpoint_kit.unit_of_work import SqlUnitOfWork


async def measure(rounds: int, concurrency: int) -> tuple[float, float]:
    url = f"{os.environ['SPAWNPOINT_PG_URL']}/sp_bench_uow_{uuid.uuid4().hex[:8]}"
    await ensure_database(url)
    engine = make_engine(url, pool_size=concurrency)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(SQLModel.metadata.create_all)
        sessions = make_session_factory(engine)
        topology = Topology("bench.")
        remaining = rounds

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                event = PaymentProcessing(
                    order_id=uuid.uuid4(),
                    correlation_id="c-bench",
                    producer="bench",
                    payload=PaymentProcessingPayload(session_id="cs_bench"),
                )
                async with SqlUnitOfWork(sessions, topology) as uow:
                    await uow.claim("bench", str(event.event_id), event_type=event.event_type, order_id=event.order_id)
                    uow.publish(event)
                    await uow.commit()

        remaining = 200  # warm-up: connections, prepared statements, compiled-statement cache
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        remaining = rounds
        cpu, wall = time.process_time(), time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return (time.process_time() - cpu) * 1000 / rounds, rounds / (time.perf_counter() - wall)
    finally:
        await engine.dispose()
        await drop_database(url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=10)
    args = parser.parse_args()
    cpu_ms, rate = asyncio.run(measure(args.rounds, args.concurrency))
    print(f"claim + one staged event + commit: {cpu_ms:.3f} ms CPU per unit of work ({rate:.0f}/s)")


if __name__ == "__main__":
    main()
