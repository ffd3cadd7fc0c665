"""Whether webhooks are pouring in right now: what lets the webhook worker give way to the intake.

The intake and the webhook worker of the default process share one event loop, and asyncio has no
priorities: sixteen fulfilments (a Stripe call, a transaction of a dozen statements, OrderPaid) each take
turns with the webhooks' requests, and during a sale's burst they took most of the loop (39 webhooks/s,
p99 805 ms, against 438/s for an intake-only process). A webhook left waiting is one Stripe retries, and
the customer's payment is not even stored yet; a stored event whose fulfilment waits a second is durable
and loses nothing. So while webhooks pour in, the worker applies fewer events at once
(``WEBHOOK_WORKER_BUSY_CONCURRENCY``, at least one, started at most ``WEBHOOK_WORKER_BUSY_EVENTS_PER_SECOND``
a second, so fulfilment never stops), and returns to
``WEBHOOK_WORKER_CONCURRENCY`` once the flood has passed (``window_seconds`` without one).

Pouring in means either of two signs, each seen at a delivery's start: deliveries arriving faster than
``busy_rate`` per second (over the last window), or ``busy_in_flight`` of them inside the endpoint at once.
The second is the one that matters when the worker is the cause: a starved intake answers slowly, so its
rate falls while its deliveries pile up; a rate alone would then read "quiet" and the worker keep the loop.
Neither is "any webhook lately": in ordinary trade every order sends a webhook or two, each costing the
intake about a millisecond, and throttling the worker then would only delay fulfilment for nothing.
"""

from __future__ import annotations

import time
from collections import deque


class WebhookPressure:
    """The intake's side marks each delivery as it starts (``arrived``) and ends (``answered``); the worker's
    side asks ``busy`` and, while busy, ``quiet_in`` to know when to look again."""

    def __init__(self, *, busy_rate: float = 100.0, busy_in_flight: int = 8, window_seconds: float = 0.25) -> None:
        self._window = window_seconds
        self._threshold = max(1, round(busy_rate * window_seconds))
        self._busy_in_flight = max(1, busy_in_flight)
        self._arrivals: deque[float] = deque(maxlen=self._threshold)
        self._busy_until = float("-inf")
        self.in_flight = 0

    def arrived(self) -> None:
        now = time.monotonic()
        self.in_flight += 1
        self._arrivals.append(now)
        flooding = len(self._arrivals) == self._threshold and now - self._arrivals[0] < self._window
        if flooding or self.in_flight >= self._busy_in_flight:
            self._busy_until = now + self._window

    def answered(self) -> None:
        self.in_flight = max(0, self.in_flight - 1)

    def busy(self) -> bool:
        return self.in_flight >= self._busy_in_flight or time.monotonic() < self._busy_until

    def quiet_in(self) -> float:
        """Seconds until the flood counts as over if nothing more arrives (0 when it already is)."""
        if self.in_flight >= self._busy_in_flight:
            return self._window
        return max(0.0, self._busy_until - time.monotonic())
