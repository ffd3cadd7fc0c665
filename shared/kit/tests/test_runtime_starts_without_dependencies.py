"""A service whose broker is down when it starts keeps running, says it is not ready, and comes up by itself
when the broker answers (finding 7: it exited with "Application startup failed" and stayed down)."""

from __future__ import annotations

import asyncio

import pytest
from yarl import URL

from spawnpoint_kit.http import NotReady
from spawnpoint_kit.runtime import ServiceRuntime
from spawnpoint_kit.settings import CommonSettings
from spawnpoint_kit.testing import TcpLink, eventually

pytestmark = pytest.mark.component


async def test_a_service_started_while_its_broker_is_down_comes_up_when_the_broker_does(database_url: str) -> None:
    broker = URL(CommonSettings().broker_url.get_secret_value())  # the session's user and vhost
    gate = TcpLink(broker.port or 5672, up=False)  # the broker, refusing until the test lets it answer
    await gate.start()
    through_gate = str(broker.with_host("127.0.0.1").with_port(gate.port))
    settings = CommonSettings(BROKER_URL=through_gate, SPAWNPOINT_NAMESPACE="tkstart.")
    runtime = ServiceRuntime(settings, service="kit-tests", database_url=database_url, relay=False)
    try:
        await asyncio.wait_for(runtime.start(), timeout=30)  # returns: it does not wait for the broker
        with pytest.raises(NotReady, match="waiting for the broker"):
            await runtime.check_started()
        gate.up = True

        async def started() -> bool:
            try:
                await runtime.check_started()
            except NotReady:
                return False
            return True

        await eventually(started, timeout=30, what="the service up once the broker answers")
        await runtime.check_broker()
    finally:
        await runtime.stop()
        await gate.close()
