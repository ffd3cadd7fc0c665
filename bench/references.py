"""Reference measurements taken in the same run as the figures they are compared with.

- the broker: confirmed, persistent publish to a quorum queue -> consume -> ack, messages per second;
- PostgreSQL: single-row INSERT + COMMIT per transaction, commits per second at the same concurrency the
  services use.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import aio_pika
import asyncpg

from spawnpoint_kit.db import asyncpg_dsn, drop_database, ensure_database


async def broker_round_trip(url: str, *, messages: int = 5000, window: int = 200) -> float:
    """Messages per second through a quorum queue with publisher confirms and consumer acks."""
    connection = await aio_pika.connect(url)
    name = f"bench.reference.{uuid.uuid4().hex[:8]}"
    try:
        channel = await connection.channel(publisher_confirms=True)
        await channel.set_qos(prefetch_count=window)
        queue = await channel.declare_queue(name, durable=True, arguments={"x-queue-type": "quorum"})
        done = asyncio.Event()
        received = 0

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            nonlocal received
            await message.ack()
            received += 1
            if received == messages:
                done.set()

        await queue.consume(on_message)
        body = b"{" + b'"x": 1, ' * 60 + b'"y": 2}'
        started = time.perf_counter()
        sent = 0
        while sent < messages:
            batch = min(window, messages - sent)
            await asyncio.gather(
                *(
                    channel.default_exchange.publish(
                        aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                        routing_key=name,
                        mandatory=True,
                    )
                    for _ in range(batch)
                )
            )
            sent += batch
        await asyncio.wait_for(done.wait(), timeout=120)
        elapsed = time.perf_counter() - started
        await queue.delete(if_unused=False, if_empty=False)
        return messages / elapsed
    finally:
        await connection.close()


async def postgres_commits(url: str, *, transactions: int = 5000, concurrency: int = 10) -> float:
    """Single-row INSERT + COMMIT transactions per second, ``concurrency`` connections at once."""
    await ensure_database(url)
    dsn = asyncpg_dsn(url)
    pool = await asyncpg.create_pool(dsn, min_size=concurrency, max_size=concurrency)
    try:
        async with pool.acquire() as conn:
            await conn.execute("CREATE TABLE IF NOT EXISTS bench_commit (id uuid PRIMARY KEY, payload jsonb)")
        remaining = transactions

        async def worker() -> None:
            nonlocal remaining
            async with pool.acquire() as conn:
                while remaining > 0:
                    remaining -= 1
                    async with conn.transaction():
                        await conn.execute(
                            "INSERT INTO bench_commit VALUES ($1, $2)", uuid.uuid4(), '{"status": "paid"}'
                        )

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return transactions / (time.perf_counter() - started)
    finally:
        await pool.close()
        await drop_database(url)
