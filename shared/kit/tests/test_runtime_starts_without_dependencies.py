"""A service whose broker is down when it starts keeps running, says it is not ready, and comes up by itself
when the broker answers (finding 7: it exited with "Application startup failed" and stayed down)."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from spawnpoint_kit.http import NotReady
from spawnpoint_kit.runtime import ServiceRuntime
from spawnpoint_kit.settings import CommonSettings
from spawnpoint_kit.testing import eventually

pytestmark = pytest.mark.component


class Gate:
    """A TCP proxy to the local RabbitMQ that refuses connections until it is opened."""

    def __init__(self) -> None:
        self.open = False
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.open:
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", 5672)
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True)

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()


async def test_a_service_started_while_its_broker_is_down_comes_up_when_the_broker_does(database_url: str) -> None:
    gate = Gate()
    await gate.start()
    settings = CommonSettings(BROKER_URL=f"amqp://guest:guest@127.0.0.1:{gate.port}/", SPAWNPOINT_NAMESPACE="tkstart.")
    runtime = ServiceRuntime(settings, service="kit-tests", database_url=database_url, relay=False)
    try:
        await asyncio.wait_for(runtime.start(), timeout=30)  # returns: it does not wait for the broker
        with pytest.raises(NotReady, match="waiting for the broker"):
            await runtime.check_started()
        gate.open = True

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
