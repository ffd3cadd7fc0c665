"""Fixtures for end-to-end tests: a whole Spawnpoint stack as separate processes against the real
PostgreSQL and RabbitMQ, with its own databases, queue namespace and free ports, and the stand-ins for
Stripe and the panel over real HTTP.

One stack serves the whole test session (starting it costs seconds); tests isolate themselves by using
fresh users and orders. Tests that need a differently configured stack start their own with
``make_stack``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from devstack import Stack, StackConfig, drop_databases, drop_namespace
from spawnpoint_kit.auth import mint_token
from spawnpoint_kit.settings import CommonSettings

from .support import Api, BrokerProbe

LOG_ROOT = Path(__file__).resolve().parents[2] / ".run" / "test-logs"


def _run_id() -> str:
    return uuid.uuid4().hex[:8]


@pytest.fixture(scope="session")
def make_stack() -> Iterator[Callable[..., Stack]]:
    """Factory for stacks; every stack it made is stopped and its databases and queues removed."""
    made: list[Stack] = []

    def factory(**overrides: object) -> Stack:
        run_id = _run_id()
        config = StackConfig.for_tests(run_id, LOG_ROOT / run_id, **overrides)
        stack = Stack(config)
        made.append(stack)
        stack.start()
        return stack

    yield factory
    for stack in made:
        stack.stop()
        if not os.environ.get("SPAWNPOINT_KEEP_TEST_DATA"):
            drop_databases(stack.config)
            drop_namespace(stack.config)


@pytest.fixture(scope="session")
def stack(make_stack: Callable[..., Stack]) -> Stack:
    return make_stack()


@pytest.fixture
async def api(stack: Stack) -> AsyncIterator[Api]:
    async with Api(stack.config) as client:
        yield client


@pytest.fixture
async def broker(stack: Stack) -> AsyncIterator[BrokerProbe]:
    probe = BrokerProbe(stack.config.namespace)
    await probe.connect()
    try:
        yield probe
    finally:
        await probe.close()


def customer_token(
    user_id: str | None = None, *, email: str | None = None, operator: bool = False, name: str | None = None
) -> str:
    user_id = user_id or f"user-{uuid.uuid4().hex[:10]}"
    return mint_token(
        CommonSettings().jwt_secret.get_secret_value(),
        sub=user_id,
        email=email or f"{user_id}@example.test",
        name=name,
        roles=("operator",) if operator else (),
    )
