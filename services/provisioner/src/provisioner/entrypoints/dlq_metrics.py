"""Background job: the depth of the provisioner's dead-letter queue, as a Prometheus gauge.

An alert on ``provisioner_dead_letter_queue_depth > 0`` tells the operator on call that orders wait for
``spawnctl dlq`` (docs/provisioning.md). Read with a passive declare every ``interval`` seconds on one
connection kept between runs (closed when the service stops); a broker outage leaves the last value,
drops the connection and is retried on the next run.
"""

from __future__ import annotations

import contextlib

from aio_pika.abc import AbstractConnection
from prometheus_client import Gauge

from spawnpoint_kit.logs import get_logger
from spawnpoint_kit.messaging.dlq import DeadLetterQueue, connect
from spawnpoint_kit.periodic import BackgroundJob, periodic

log = get_logger(__name__)

DLQ_DEPTH = Gauge("provisioner_dead_letter_queue_depth", "Messages waiting in the dead-letter queue", ["queue"])


class DeadLetterDepth:
    """Reads one dead-letter queue's depth into ``DLQ_DEPTH``, keeping its connection between reads."""

    def __init__(self, broker_url: str, dlq: str) -> None:
        self._broker_url = broker_url
        self._dlq = dlq
        self._connection: AbstractConnection | None = None

    async def read(self) -> None:
        try:
            if self._connection is None or self._connection.is_closed:
                self._connection = await connect(self._broker_url)
            DLQ_DEPTH.labels(self._dlq).set(await DeadLetterQueue(self._connection, self._dlq).depth())
        except Exception as exc:
            log.warning("could not read the dead-letter queue depth", queue=self._dlq, error=str(exc))
            await self.close()

    async def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.close()


def dlq_depth_job(broker_url: str, dlq: str, *, interval: float) -> BackgroundJob:
    depth = DeadLetterDepth(broker_url, dlq)
    return periodic(depth.read, every=interval, name="dlq-metrics", on_stop=depth.close)
