"""A minimal HTTP/1.1 keep-alive client on asyncio streams, for load generation.

Why not httpx: on this 2-core machine httpx's async client measured a few hundred requests per second
and got slower with concurrency, which would make the load generator the bottleneck of every figure.
The load generator needs very little of HTTP: requests with a body, a status, a body read by
Content-Length or chunked encoding, keep-alive, and a streaming read for Server-Sent Events.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: dict[str, str]
    body: bytes


class Connection:
    """One keep-alive connection to ``host:port``; requests on it are sequential."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._reader is None or self._writer is None or self._writer.is_closing():
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port, limit=2**20)
        return self._reader, self._writer

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()
        self._reader = self._writer = None

    def _head(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> bytes:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}", f"Content-Length: {len(body)}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def encode(self, method: str, path: str, headers: Mapping[str, str] | None = None, body: bytes = b"") -> bytes:
        """The request's bytes, to prepare once and send many times (the load generator's hot path)."""
        return self._head(method, path, headers or {}, body) + body

    async def request(
        self, method: str, path: str, *, headers: Mapping[str, str] | None = None, body: bytes = b""
    ) -> Response:
        return await self.send(self.encode(method, path, headers, body))

    async def send(self, data: bytes) -> Response:
        """Send prepared request bytes and read the response (reconnecting once if the server closed)."""
        for attempt in (1, 2):
            reader, writer = await self._open()
            try:
                writer.write(data)
                await writer.drain()
                status, response_headers = await _read_head(reader)
                payload = await _read_body(reader, response_headers)
            except (ConnectionError, asyncio.IncompleteReadError):
                await self.close()
                if attempt == 2:
                    raise
                continue
            if response_headers.get("connection", "").lower() == "close":
                await self.close()
            return Response(status, response_headers, payload)
        raise ConnectionError("unreachable")

    async def stream(self, path: str, *, headers: Mapping[str, str] | None = None) -> AsyncIterator[bytes]:
        """GET ``path`` and yield the body's lines as they arrive (for text/event-stream)."""
        reader, writer = await self._open()
        writer.write(self._head("GET", path, headers or {}, b""))
        await writer.drain()
        status, response_headers = await _read_head(reader)
        if status != 200:
            raise ConnectionError(f"stream answered {status}")
        chunked = response_headers.get("transfer-encoding", "").lower() == "chunked"
        buffer = b""
        while True:
            if chunked:
                size_line = await reader.readline()
                size = int(size_line.strip().split(b";")[0] or b"0", 16)
                if size == 0:
                    return
                data = await reader.readexactly(size + 2)
                buffer += data[:-2]
            else:
                data = await reader.read(65536)
                if not data:
                    return
                buffer += data
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                yield line.rstrip(b"\r")


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("connection closed")
    status = int(status_line.split(b" ", 2)[1])
    headers: dict[str, str] = {}
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if "content-length" in headers:
        return await reader.readexactly(int(headers["content-length"]))
    if headers.get("transfer-encoding", "").lower() == "chunked":
        parts: list[bytes] = []
        while True:
            size = int((await reader.readline()).strip().split(b";")[0] or b"0", 16)
            if size == 0:
                await reader.readline()
                return b"".join(parts)
            parts.append((await reader.readexactly(size + 2))[:-2])
    return b""
