"""Waiting for eventual consistency in tests: poll to a deadline, never sleep a fixed time.

Shared by the services' component tests and the end-to-end tests (``tests/integration``), with ``TcpLink``
for cutting one process off a dependency.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T | None]], *, timeout: float = 30.0, interval: float = 0.05, what: str = ""
) -> T:
    """Call ``probe`` until it returns something other than None (or False); fail at the deadline with the
    last value it returned."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while True:
        last = await probe()
        if last is not None and last is not False:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or probe}; last value: {last!r}")
        await asyncio.sleep(interval)


class TcpLink:
    """A TCP proxy to a local port (RabbitMQ's, PostgreSQL's) that a test can cut and restore: the network
    between one process and a dependency, without touching the dependency every other test is using.

    While down, new connections are closed at once; ``cut()`` also closes the ones open through it."""

    def __init__(self, upstream_port: int, *, up: bool = True) -> None:
        self.upstream_port = upstream_port
        self.up = up
        self.port = 0
        self._pipes: list[asyncio.StreamWriter] = []
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.up:
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        self._pipes += [writer, up_writer]
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

    def cut(self) -> None:
        self.up = False
        for writer in self._pipes:
            writer.close()
        self._pipes.clear()

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
