"""In-process retries of panel work with tenacity: only classified transient failures, bounded.

``wait_exponential_jitter`` spaces the tries, never shorter than the panel's ``Retry-After``;
``stop_after_attempt`` and ``stop_before_delay`` bound them (no retry is started that would end past
``max_seconds``), so a delivery is handled in seconds, far below the broker's consumer timeout. What is
still failing after that is the caller's to schedule through the broker or to fail.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from prometheus_client import Counter
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_before_delay,
    wait_exponential_jitter,
)
from tenacity.wait import wait_base

from spawnpoint_kit.logs import get_logger

from ..domain.failures import classify
from ..domain.retry import RetryPolicy

log = get_logger(__name__)
T = TypeVar("T")

RETRIES = Counter("provisioner_panel_retries_total", "In-process retries of panel work, by failure reason", ["reason"])


class wait_for_retry_after(wait_base):
    """Wait as ``inner`` says, but at least as long as the failure's ``Retry-After``."""

    def __init__(self, inner: wait_base) -> None:
        self.inner = inner

    def __call__(self, retry_state: RetryCallState) -> float:
        wait = self.inner(retry_state)
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None and outcome.failed else None
        retry_after = classify(exc).retry_after if exc is not None else None
        return max(wait, retry_after or 0.0)


def retrying(policy: RetryPolicy) -> AsyncRetrying:
    def log_retry(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        failure = classify(exc) if exc is not None else None
        RETRIES.labels(failure.reason.value if failure else "unknown").inc()
        log.warning(
            "panel call failed; retrying",
            attempt=state.attempt_number,
            wait_seconds=round(state.upcoming_sleep, 2),
            error=str(exc),
        )

    return AsyncRetrying(
        retry=retry_if_exception(lambda exc: classify(exc).transient),
        stop=stop_after_attempt(policy.attempts) | stop_before_delay(policy.max_seconds),
        wait=wait_for_retry_after(
            wait_exponential_jitter(
                multiplier=policy.initial_seconds, max=policy.max_wait_seconds, jitter=policy.jitter_seconds
            )
        ),
        before_sleep=log_retry,
        reraise=True,
    )


async def with_retries(policy: RetryPolicy, work: Callable[[], Awaitable[T]]) -> T:
    async for attempt in retrying(policy):
        with attempt:
            return await work()
    raise AssertionError("unreachable: tenacity re-raises the last failure")
