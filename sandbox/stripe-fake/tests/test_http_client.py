"""The delivery HTTP client against hand-written HTTP/1.1 servers (framing, keep-alive, failures)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest

from stripe_fake.http_client import DeliveryError, DeliveryTimeout, HttpPostClient

pytestmark = pytest.mark.unit

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _read_request(reader: asyncio.StreamReader) -> bytes | None:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return await reader.readexactly(length)


@asynccontextmanager
async def serve(handler: Handler) -> AsyncIterator[str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/hook?x=1"
    finally:
        server.close()


async def test_content_length_keep_alive_reuses_the_connection() -> None:
    connections = 0
    bodies: list[bytes | None] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        while True:
            try:
                bodies.append(await _read_request(reader))
            except asyncio.IncompleteReadError:
                break
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()
        writer.close()

    client = HttpPostClient(2.0)
    async with serve(handler) as url:
        for n in range(3):
            assert await client.post(url, f"body{n}".encode(), {"X-Test": "1"}) == 200
    await client.aclose()
    assert connections == 1
    assert bodies == [b"body0", b"body1", b"body2"]


async def test_chunked_and_close_delimited_and_interim_responses() -> None:
    answers = [
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n0\r\n\r\n",
        b"HTTP/1.1 204 No Content\r\n\r\n",
        b"HTTP/1.0 500 Oops\r\n\r\nbody until close",
    ]

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while answers:
            try:
                await _read_request(reader)
            except asyncio.IncompleteReadError:
                break
            answer = answers.pop(0)
            writer.write(answer)
            await writer.drain()
            if answer.startswith(b"HTTP/1.0"):
                break
        writer.close()

    client = HttpPostClient(2.0)
    async with serve(handler) as url:
        assert await client.post(url, b"{}", {}) == 202
        assert await client.post(url, b"{}", {}) == 204
        assert await client.post(url, b"{}", {}) == 500
    await client.aclose()


async def test_server_closing_an_idle_connection_is_not_a_failure() -> None:
    closed = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()  # keep-alive advertised, but closed right after (idle timeout)
        await writer.wait_closed()
        closed.set()

    client = HttpPostClient(2.0)
    async with serve(handler) as url:
        assert await client.post(url, b"1", {}) == 200
        await asyncio.wait_for(closed.wait(), timeout=5)  # the pooled connection is now stale
        assert await client.post(url, b"2", {}) == 200
    await client.aclose()


async def test_timeout_and_connection_errors() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        await asyncio.sleep(1)
        writer.close()

    client = HttpPostClient(0.1)
    async with serve(silent) as url:
        with pytest.raises(DeliveryTimeout, match=r"timeout after 0\.1s"):
            await client.post(url, b"{}", {})

    async def rude(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"garbage\r\n\r\n")
        writer.close()

    async with serve(rude) as url:
        with pytest.raises(DeliveryError):
            await client.post(url, b"{}", {})
    with pytest.raises(DeliveryError, match="connection failed"):
        await client.post(url, b"{}", {})
    with pytest.raises(DeliveryError, match="unsupported webhook URL"):
        await client.post("ftp://example.test/x", b"{}", {})
    await client.aclose()
