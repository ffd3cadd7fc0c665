"""Unit tests of the retry schedule: tenacity's waits and stops, ``Retry-After``, the broker delays and
the headers of a broker retry's copy."""

from __future__ import annotations

import time
import uuid

import pytest
from tenacity import RetryCallState

from provisioner.domain.panel import PanelError, PanelUnreachable
from provisioner.domain.retry import RetryPolicy, parse_delays
from provisioner.service_layer.provision import RETRY_HEADER, RETRY_TOKEN_HEADER, clean_headers, retry_token_of
from provisioner.service_layer.retrying import retrying, with_retries
from spawnpoint_kit.messaging.delivery import Delivery

pytestmark = pytest.mark.unit


def _state(attempt: int, exc: BaseException) -> RetryCallState:
    state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
    state.attempt_number = attempt
    state.set_exception((type(exc), exc, None))
    return state


def test_waits_grow_exponentially_with_bounded_jitter() -> None:
    policy = RetryPolicy(initial_seconds=0.5, max_wait_seconds=8.0, jitter_seconds=0.5)
    wait = retrying(policy).wait
    for attempt, base in ((1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 8.0), (9, 8.0)):
        waited = wait(_state(attempt, PanelUnreachable("x")))
        assert base <= waited <= base + 0.5, (attempt, waited)


def test_retry_after_is_a_floor() -> None:
    wait = retrying(RetryPolicy(initial_seconds=0.1, max_wait_seconds=1.0, jitter_seconds=0.0)).wait
    throttled = PanelError(429, "ThrottleRequestsException", "Too Many Attempts.", retry_after=7.0)
    assert wait(_state(1, throttled)) == 7.0


def test_only_transient_failures_are_retried() -> None:
    retry = retrying(RetryPolicy()).retry
    assert retry(_state(1, PanelUnreachable("x")))
    assert retry(_state(1, PanelError(503, None, "bad gateway", envelope=False)))
    assert not retry(_state(1, PanelError(400, "NoViableNodeException", "full")))
    assert not retry(_state(1, PanelError(422, "ValidationException", "bad")))


async def test_retries_stop_after_the_attempts() -> None:
    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        raise PanelUnreachable("down")

    policy = RetryPolicy(attempts=3, initial_seconds=0.01, max_wait_seconds=0.02, jitter_seconds=0.0)
    with pytest.raises(PanelUnreachable):
        await with_retries(policy, flaky)
    assert calls == 3


async def test_no_retry_starts_that_would_end_past_the_time_budget() -> None:
    calls = 0

    async def throttled() -> str:
        nonlocal calls
        calls += 1
        raise PanelError(429, "ThrottleRequestsException", "Too Many Attempts.", retry_after=60.0)

    started = time.monotonic()
    with pytest.raises(PanelError):
        await with_retries(RetryPolicy(attempts=5, max_seconds=2.0), throttled)
    assert calls == 1  # a 60 s Retry-After does not fit a 2 s budget: handed to the broker instead
    assert time.monotonic() - started < 1.0


async def test_a_permanent_failure_is_not_retried_and_success_returns() -> None:
    calls = 0

    async def eventually_ok() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise PanelError(503, None, "bad gateway", envelope=False)
        return "created"

    policy = RetryPolicy(attempts=4, initial_seconds=0.01, max_wait_seconds=0.02, jitter_seconds=0.0)
    assert await with_retries(policy, eventually_ok) == "created"
    assert calls == 3


def test_broker_delays_grow_then_run_out() -> None:
    policy = RetryPolicy(broker_delays=parse_delays("30, 120,600"))
    assert [policy.broker_delay(n) for n in range(4)] == [30, 120, 600, None]
    assert parse_delays("") == ()
    assert RetryPolicy().worst_case_handler_seconds(panel_timeout=60) < 30 * 60  # the consumer timeout
    with pytest.raises(ValueError):
        RetryPolicy(broker_delays=(0,))


def test_a_broker_retry_copy_drops_the_broker_annotations_and_old_retry_marks() -> None:
    token = uuid.uuid4()
    headers = {
        "event_type": "OrderPaid",
        "traceparent": "00-a-b-01",
        "x-death": [{"queue": "q.retry.30s", "reason": "expired"}],
        "x-first-death-queue": "q.retry.30s",
        "x-delivery-count": 2,
        RETRY_HEADER: 1,
        RETRY_TOKEN_HEADER: str(token),
        "x-replay-count": 1,
    }
    assert clean_headers(headers) == {"event_type": "OrderPaid", "traceparent": "00-a-b-01", "x-replay-count": 1}
    delivery = Delivery("q", b"{}", headers, None, None, "q", False)
    assert retry_token_of(delivery) == token
    assert retry_token_of(Delivery("q", b"{}", {RETRY_TOKEN_HEADER: "nonsense"}, None, None, "q", False)) is None
