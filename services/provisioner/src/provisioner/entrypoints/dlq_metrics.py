"""Background job: the depth of the provisioner's dead-letter queue, as a Prometheus gauge.

An alert on ``provisioner_dead_letter_queue_depth > 0`` tells the operator on call that orders wait for
``spawnctl dlq`` (docs/provisioning.md). Read with a passive declare every ``interval`` seconds; a broker
outage leaves the last value and is retried.
"""

from __future__ import annotations

import asyncio
import contextlib

from aio_pika.abc import AbstractConnection
from prometheus_client import Gauge

from spawnpoint_kit.logs import get_logger
from spawnpoint_kit.messaging.dlq import DeadLetterQueue, connect
from spawnpoint_kit.notify import sleep_or
from spawnpoint_kit.runtime import BackgroundJob

log = get_logger(__name__)

DLQ_DEPTH = Gauge("provisioner_dead_letter_queue_depth", "Messages waiting in the dead-letter queue", ["queue"])


def dlq_depth_job(broker_url: str, dlq: str, *, interval: float) -> BackgroundJob:
    async def run(stop: asyncio.Event) -> None:
        connection: AbstractConnection | None = None
        try:
            while not stop.is_set():
                try:
                    if connection is None or connection.is_closed:
                        connection = await connect(broker_url)
                    DLQ_DEPTH.labels(dlq).set(await DeadLetterQueue(connection, dlq).depth())
                except Exception as exc:
                    log.warning("could not read the dead-letter queue depth", queue=dlq, error=str(exc))
                    if connection is not None:
                        with contextlib.suppress(Exception):
                            await connection.close()
                    connection = None
                await sleep_or(stop, interval)
        finally:
            if connection is not None:
                with contextlib.suppress(Exception):
                    await connection.close()

    return run
