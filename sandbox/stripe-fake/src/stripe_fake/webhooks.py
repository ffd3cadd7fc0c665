"""Webhook endpoints and the delivery worker.

Stripe delivers each event to every endpoint subscribed to its type, asynchronously, as a POST of the
exact serialized bytes, signed afresh for every attempt (new ``t=``). Non-2xx answers, connection errors
and timeouts are retried with exponential backoff; a 2xx ends the delivery. Order is not guaranteed.

Here every (event, endpoint) delivery is its own asyncio task sharing one keep-alive HTTP client (see
``http_client``), so a slow receiver or a pending retry never holds up other events and the API never
waits for deliveries.
While paused, deliveries (and retries that come due) are queued; ``flush`` sends the queue one by one in
creation order, reversed or shuffled (seeded), which makes out-of-order arrival reproducible in tests.
Drop rules make deliveries of chosen event types vanish entirely (never attempted, never retried),
which is how a test loses a webhook.
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import random
import time
from collections import deque
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from stripe_fake.clock import FakeClock
from stripe_fake.config import FakeConfig
from stripe_fake.http_client import DeliveryError, HttpPostClient
from stripe_fake.ids import new_id
from stripe_fake.models import DeliveryAttempt, Event, WebhookEndpoint
from stripe_fake.signing import signature_header

logger = logging.getLogger("stripe_fake.webhooks")

USER_AGENT = "Stripe/1.0 (+https://stripe.com/docs/webhooks)"
CONTENT_TYPE = "application/json; charset=utf-8"

FlushOrder = Literal["creation", "reverse", "concurrent", "shuffle"]


@dataclass(slots=True)
class DropRule:
    """Drop the next ``remaining`` deliveries (``None``: all) of events matching ``event_type``."""

    id: str
    event_type: str
    endpoint_id: str | None
    remaining: int | None
    dropped: int = 0

    def matches(self, event_type: str, endpoint_id: str) -> bool:
        """``event_type`` may use ``*`` wildcards (``invoice.*``)."""
        if self.endpoint_id is not None and self.endpoint_id != endpoint_id:
            return False
        return fnmatch.fnmatchcase(event_type, self.event_type)

    def to_dict(self) -> dict[str, Any]:
        """Control-API view."""
        return {
            "id": self.id,
            "event_type": self.event_type,
            "endpoint_id": self.endpoint_id,
            "remaining": self.remaining,
            "dropped": self.dropped,
        }


class DropRules:
    """Active drop rules, consumed first-registered first, and the record of what they dropped."""

    def __init__(self) -> None:
        self._rules: list[DropRule] = []
        self.dropped: deque[dict[str, Any]] = deque(maxlen=10_000)

    def add(self, event_type: str, *, count: int | None, endpoint_id: str | None) -> DropRule:
        """Register a rule."""
        rule = DropRule(new_id("drop_", 12), event_type, endpoint_id, count)
        self._rules.append(rule)
        return rule

    def take(self, event: Event, endpoint: WebhookEndpoint) -> bool:
        """Whether this delivery is dropped (and counted as such)."""
        for rule in self._rules:
            if not rule.matches(event.type, endpoint.id):
                continue
            rule.dropped += 1
            if rule.remaining is not None:
                rule.remaining -= 1
                if rule.remaining <= 0:
                    self._rules.remove(rule)
            self.dropped.append(
                {"event_id": event.id, "event_type": event.type, "endpoint_id": endpoint.id, "rule_id": rule.id}
            )
            return True
        return False

    def active(self) -> list[DropRule]:
        """The rules still in force."""
        return list(self._rules)

    def clear(self) -> None:
        """Remove every rule and forget what was dropped."""
        self._rules.clear()
        self.dropped.clear()


class EndpointRegistry:
    """Registered webhook endpoints; those from the start configuration survive a data reset."""

    def __init__(self) -> None:
        self._endpoints: dict[str, WebhookEndpoint] = {}

    def add(
        self,
        url: str,
        secrets: Iterable[str],
        events: Iterable[str] | None,
        created: int,
        *,
        from_config: bool = False,
    ) -> WebhookEndpoint:
        """Register a receiver."""
        endpoint = WebhookEndpoint(
            id=new_id("we_", 24),
            url=url,
            secrets=tuple(secrets),
            events=frozenset(events) if events is not None else None,
            created=created,
            from_config=from_config,
        )
        self._endpoints[endpoint.id] = endpoint
        return endpoint

    def get(self, endpoint_id: str) -> WebhookEndpoint | None:
        """One endpoint, or ``None`` once deleted."""
        return self._endpoints.get(endpoint_id)

    def update(
        self,
        endpoint_id: str,
        *,
        url: str | None = None,
        secrets: Iterable[str] | None = None,
        events: Iterable[str] | None = None,
        all_events: bool = False,
    ) -> WebhookEndpoint | None:
        """Change an endpoint in place (secret roll, new URL or new subscriptions)."""
        endpoint = self._endpoints.get(endpoint_id)
        if endpoint is None:
            return None
        if url is not None:
            endpoint.url = url
        if secrets is not None:
            endpoint.secrets = tuple(secrets)
        if all_events:
            endpoint.events = None
        elif events is not None:
            endpoint.events = frozenset(events)
        return endpoint

    def remove(self, endpoint_id: str) -> bool:
        """Delete an endpoint; its pending retries stop."""
        return self._endpoints.pop(endpoint_id, None) is not None

    def all(self) -> list[WebhookEndpoint]:
        """Every endpoint, in registration order."""
        return list(self._endpoints.values())

    def matching(self, event_type: str) -> list[WebhookEndpoint]:
        """Endpoints subscribed to ``event_type``."""
        return [e for e in self._endpoints.values() if e.wants(event_type)]

    def reset(self) -> None:
        """Drop endpoints registered at run time, keep the ones from the start configuration."""
        self._endpoints = {k: v for k, v in self._endpoints.items() if v.from_config}


@dataclass(slots=True)
class _Job:
    """The delivery of one event to one endpoint; ``attempt`` is the number of the next attempt."""

    seq: int
    event: Event
    endpoint_id: str
    attempt: int
    generation: int


class DeliveryWorker:
    """Sends events to endpoints in background tasks, with retries, pause and flush."""

    def __init__(self, config: FakeConfig, clock: FakeClock, endpoints: EndpointRegistry) -> None:
        self._config = config
        self._clock = clock
        self._endpoints = endpoints
        self._client: HttpPostClient | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._queue: list[_Job] = []
        self._job_seq = 0
        self._generation = 0
        self._flushing = 0
        self.paused = False
        self.attempts: deque[DeliveryAttempt] = deque(maxlen=config.delivery_history_limit)
        self.drops = DropRules()

    async def start(self) -> None:
        """Create the shared HTTP client (one keep-alive pool per receiver origin)."""
        if self._client is None:
            self._client = HttpPostClient(self._config.delivery_timeout_seconds)

    async def stop(self) -> None:
        """Cancel pending deliveries and close the client."""
        await self._cancel_all()
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    @property
    def in_flight(self) -> int:
        """Deliveries being attempted or waiting for a retry."""
        return len(self._tasks) + self._flushing

    @property
    def queued(self) -> int:
        """Deliveries held back while paused."""
        return len(self._queue)

    def submit(self, event: Event, endpoints: Iterable[WebhookEndpoint], *, apply_drops: bool = True) -> int:
        """Deliver ``event`` to ``endpoints`` in the background (or queue it while paused).

        Deliveries a drop rule matches are never attempted; the event stays pending for that
        endpoint, so ``GET /v1/events?delivery_success=false`` lists it, as for a lost webhook.
        Explicit redeliveries pass ``apply_drops=False``.
        """
        count = 0
        for endpoint in endpoints:
            if apply_drops and self.drops.take(event, endpoint):
                continue
            self._job_seq += 1
            job = _Job(self._job_seq, event, endpoint.id, 1, self._generation)
            if self.paused:
                self._queue.append(job)
            else:
                self._spawn(self._run(job))
            count += 1
        return count

    def pause(self) -> None:
        """Hold new deliveries (and retries that come due) in the queue."""
        self.paused = True

    async def flush(self, order: FlushOrder = "creation", seed: int | None = None) -> int:
        """Send the queued deliveries now: one at a time in creation, reverse or shuffled order, or all at once.

        Returns after each queued delivery had its attempt, so the receiver has seen them in that
        order; failed ones continue retrying in the background. Pausing stays as it was. ``shuffle``
        with a ``seed`` gives the same order every time.
        """
        jobs = sorted(self._queue, key=lambda j: (j.event.seq, j.seq), reverse=order == "reverse")
        if order == "shuffle":
            random.Random(seed).shuffle(jobs)
        self._queue.clear()
        self._flushing += len(jobs)
        try:
            if order == "concurrent":
                await asyncio.gather(*(self._attempt_then_continue(job) for job in jobs))
            else:
                for job in jobs:
                    await self._attempt_then_continue(job)
        finally:
            self._flushing -= len(jobs)
        return len(jobs)

    async def resume(self) -> int:
        """Flush the queue in creation order, then deliver normally again."""
        total = 0
        while self._queue:
            total += await self.flush("creation")
        self.paused = False
        return total

    async def reset(self) -> None:
        """Forget queued and pending deliveries and the attempt log; unpause."""
        self._generation += 1
        self._queue.clear()
        await self._cancel_all()
        self.attempts.clear()
        self.drops.clear()
        self.paused = False

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _cancel_all(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _run(self, job: _Job) -> None:
        if await self._attempt(job):
            return
        await self._retry_later(job)

    async def _attempt_then_continue(self, job: _Job) -> None:
        if not await self._attempt(job):
            self._spawn(self._retry_later(job))

    async def _retry_later(self, job: _Job) -> None:
        """Wait out the backoff after a failed attempt, then try again (or queue if paused)."""
        while job.attempt < self._config.max_attempts:
            await asyncio.sleep(self._config.retry_delay(job.attempt))
            if job.generation != self._generation:
                return
            job.attempt += 1
            if self.paused:
                self._queue.append(job)
                return
            if await self._attempt(job):
                return

    async def _attempt(self, job: _Job) -> bool:
        """One signed POST; True when the delivery is finished (2xx, or endpoint gone, or exhausted)."""
        endpoint = self._endpoints.get(job.endpoint_id)
        if endpoint is None or job.generation != self._generation:
            return True
        if self._client is None:
            await self.start()
        assert self._client is not None
        event = job.event
        timestamp = self._clock.now_int()
        headers = {
            "Content-Type": CONTENT_TYPE,
            "User-Agent": USER_AGENT,
            "Stripe-Signature": signature_header(event.body, endpoint.secrets, timestamp),
            "Accept": "*/*; q=0.5, application/xml",
            "Cache-Control": "no-cache",
        }
        status: int | None = None
        error: str | None = None
        started = time.perf_counter()
        try:
            status = await self._client.post(endpoint.url, event.body, headers)
        except DeliveryError as exc:
            error = str(exc) or type(exc).__name__
        duration_ms = (time.perf_counter() - started) * 1000
        if job.generation != self._generation:
            return True
        succeeded = status is not None and 200 <= status < 300
        exhausted = job.attempt >= self._config.max_attempts
        record = DeliveryAttempt(
            id=new_id("whdel_", 20),
            event_id=event.id,
            event_type=event.type,
            endpoint_id=endpoint.id,
            endpoint_url=endpoint.url,
            attempt=job.attempt,
            timestamp=timestamp,
            status_code=status,
            error=error,
            duration_ms=duration_ms,
            next_retry_in_seconds=None if succeeded or exhausted else self._config.retry_delay(job.attempt),
        )
        self.attempts.append(record)
        if succeeded:
            event.pending_endpoints.discard(endpoint.id)
            logger.debug("delivered %s %s to %s (attempt %d)", event.id, event.type, endpoint.url, job.attempt)
            return True
        logger.info(
            "delivery of %s %s to %s failed (attempt %d/%d): %s",
            event.id,
            event.type,
            endpoint.url,
            job.attempt,
            self._config.max_attempts,
            status if status is not None else error,
        )
        return exhausted
