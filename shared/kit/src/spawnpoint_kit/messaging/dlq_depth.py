"""The depth of every consumed queue's dead-letter queue, as a Prometheus gauge, in every service.

An alert on ``dead_letter_queue_depth > 0`` tells the operator on call that messages wait for
``spawnctl dlq`` (docs/operations.md). Each service reads the DLQs of the queues it consumes with a
passive declare every ``DLQ_METRICS_SECONDS``; a broker outage leaves the last value and is retried.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

from aio_pika.abc import AbstractConnection
from prometheus_client import Gauge

from ..logs import get_logger
from .dlq import DeadLetterQueue, connect

log = get_logger(__name__)

DLQ_DEPTH = Gauge("dead_letter_queue_depth", "Messages waiting in a dead-letter queue for an operator", ["queue"])


class DeadLetterDepths:
    """Reads the depth of some dead-letter queues into ``DLQ_DEPTH``, keeping one connection between reads."""

    def __init__(self, broker_url: str, dlqs: Sequence[str]) -> None:
        self._broker_url = broker_url
        self._dlqs = list(dlqs)
        self._connection: AbstractConnection | None = None

    async def read(self) -> None:
        try:
            if self._connection is None or self._connection.is_closed:
                self._connection = await connect(self._broker_url)
            for dlq in self._dlqs:
                DLQ_DEPTH.labels(dlq).set(await DeadLetterQueue(self._connection, dlq).depth())
        except Exception as exc:
            log.warning("could not read dead-letter queue depths", queues=self._dlqs, error=str(exc))
            await self.close()

    async def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.close()
