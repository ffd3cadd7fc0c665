"""The retry schedule: first in-process, then through the broker, then the dead-letter queue.

A transient panel failure is retried in the handler (tenacity: exponential backoff with jitter,
``Retry-After`` honoured, bounded both in attempts and in elapsed time so a handler never comes near
the broker's 30-minute consumer timeout). When those run out, the message is parked in a delay queue
(``<queue>.retry.<n>s``, a fixed TTL that dead-letters it back to the work queue) for each delay of
``broker_delays`` in turn, so an outage of minutes is ridden out without holding a consumer. When the
last delay has been used, provisioning fails (``ProvisionFailed panel_unavailable``, replayable) and
the message goes to the dead-letter queue for an operator.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4
    """In-process tries of one delivery (the first one included)."""
    max_seconds: float = 30.0
    """No in-process retry starts once this much time has passed since the first try."""
    initial_seconds: float = 0.5
    max_wait_seconds: float = 8.0
    jitter_seconds: float = 0.5
    broker_delays: tuple[int, ...] = field(default=(30, 120, 600))
    """Seconds a message waits in the broker before each redelivery; growing."""

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        if any(d <= 0 for d in self.broker_delays):
            raise ValueError("broker delays must be positive whole seconds")

    def broker_delay(self, retries_so_far: int) -> int | None:
        """The delay before broker redelivery number ``retries_so_far + 1``, or None when exhausted."""
        if retries_so_far < 0 or retries_so_far >= len(self.broker_delays):
            return None
        return self.broker_delays[retries_so_far]

    def worst_case_handler_seconds(self, panel_timeout: float, calls_per_try: int = 4) -> float:
        """An upper bound of one delivery's handling time, to compare with the consumer timeout."""
        return self.max_seconds + self.max_wait_seconds + self.jitter_seconds + calls_per_try * panel_timeout


def parse_delays(text: str) -> tuple[int, ...]:
    """``"30,120,600"`` -> ``(30, 120, 600)``; empty means no broker retries."""
    return tuple(int(part) for part in text.replace(" ", "").split(",") if part)
