"""A small HTTP/1.1 client for webhook POSTs, on asyncio streams.

Why not httpx: deliveries share the fake's event loop with the API, and under benchmark load (hundreds of
events per second) httpx's async stack measured 150-750 requests/s on this machine and got slower as
concurrency grew (httpcore also retries a failed ``import sniffio`` on every request when sniffio is
absent), while plain asyncio streams do about 10,000/s. Deliveries need very little of HTTP: one POST
with a body, the status code, a keep-alive pool per origin, TLS, and a timeout. Redirects are not
followed (Stripe treats them as failures) and proxies are not used.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

MAX_HEADER_LINES = 200
MAX_LINE = 65536


class DeliveryError(Exception):
    """The POST failed without an HTTP status (connection, protocol or timeout)."""


class DeliveryTimeout(DeliveryError):
    """No complete answer within the delivery timeout."""


@dataclass(frozen=True, slots=True)
class _Target:
    scheme: str
    host: str
    port: int
    path: str

    @property
    def origin(self) -> tuple[str, str, int]:
        return (self.scheme, self.host, self.port)

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


@dataclass(slots=True)
class _Origin:
    slots: asyncio.Semaphore
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = field(default_factory=list)


def _parse(url: str) -> _Target:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DeliveryError(f"unsupported webhook URL: {url!r}")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise DeliveryError(f"invalid port in {url!r}") from exc
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return _Target(parts.scheme, parts.hostname, port, path)


class HttpPostClient:
    """POSTs bodies and returns status codes, reusing connections per origin."""

    def __init__(self, timeout: float, *, max_connections_per_origin: int = 64) -> None:
        self._timeout = timeout
        self._max = max_connections_per_origin
        self._origins: dict[tuple[str, str, int], _Origin] = {}
        self._ssl: ssl.SSLContext | None = None

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> int:
        """Send one POST; the status code, or :class:`DeliveryError`/:class:`DeliveryTimeout`."""
        target = _parse(url)
        origin = self._origins.get(target.origin)
        if origin is None:
            origin = _Origin(slots=asyncio.Semaphore(self._max))
            self._origins[target.origin] = origin
        request = self._encode(target, body, headers)
        async with origin.slots:
            try:
                async with asyncio.timeout(self._timeout):
                    return await self._exchange(target, origin, request)
            except TimeoutError:
                raise DeliveryTimeout(f"timeout after {self._timeout:g}s") from None

    async def aclose(self) -> None:
        """Close every idle connection."""
        for origin in self._origins.values():
            for _, writer in origin.idle:
                writer.close()
            origin.idle.clear()
        self._origins.clear()

    def _encode(self, target: _Target, body: bytes, headers: Mapping[str, str]) -> bytes:
        lines = [f"POST {target.path} HTTP/1.1", f"Host: {target.host_header}"]
        lines.extend(f"{name}: {value}" for name, value in headers.items())
        lines.append(f"Content-Length: {len(body)}")
        lines.append("Connection: keep-alive")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        return head + body

    async def _exchange(self, target: _Target, origin: _Origin, request: bytes) -> int:
        while origin.idle:
            reader, writer = origin.idle.pop()
            if writer.is_closing() or reader.at_eof():
                writer.close()
                continue
            try:
                return await self._send(origin, reader, writer, request)
            except _StaleConnection:
                continue  # the server closed it while idle: retry on a fresh connection
        reader, writer = await self._connect(target)
        try:
            return await self._send(origin, reader, writer, request)
        except _StaleConnection:
            raise DeliveryError("connection closed before any response") from None

    async def _connect(self, target: _Target) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        context: ssl.SSLContext | None = None
        if target.scheme == "https":
            if self._ssl is None:
                self._ssl = ssl.create_default_context()
            context = self._ssl
        try:
            return await asyncio.open_connection(
                target.host,
                target.port,
                ssl=context,
                server_hostname=target.host if context else None,
                limit=MAX_LINE,
            )
        except OSError as exc:
            raise DeliveryError(f"connection failed: {exc.strerror or exc}") from exc

    async def _send(
        self,
        origin: _Origin,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        request: bytes,
    ) -> int:
        keep = False
        try:
            writer.write(request)
            await writer.drain()
            status, keep = await self._read_response(reader)
            return status
        except _StaleConnection:
            raise
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}") from exc
        finally:
            if keep and len(origin.idle) < self._max:
                origin.idle.append((reader, writer))
            else:
                writer.close()

    async def _read_response(self, reader: asyncio.StreamReader) -> tuple[int, bool]:
        first = await reader.readline()
        if not first:
            raise _StaleConnection
        while True:
            version, status = _status_line(first)
            headers = await _headers(reader)
            if status >= 200 or status == 101:
                break
            first = await reader.readline()  # interim 1xx: the real answer follows
            if not first:
                raise asyncio.IncompleteReadError(b"", None)
        connection = headers.get("connection", "").lower()
        keep = (version == "HTTP/1.1" and "close" not in connection) or "keep-alive" in connection
        if status in (204, 304):
            return status, keep
        if "chunked" in headers.get("transfer-encoding", "").lower():
            await _skip_chunked(reader)
        elif "content-length" in headers:
            await reader.readexactly(int(headers["content-length"]))
        else:
            await reader.read()  # body ends with the connection
            keep = False
        return status, keep


class _StaleConnection(Exception):
    """EOF before a status line: the (possibly pooled) connection was already closed."""


def _status_line(line: bytes) -> tuple[str, int]:
    parts = line.decode("latin-1").split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/"):
        raise ValueError(f"bad status line {line[:80]!r}")
    return parts[0], int(parts[1])


async def _headers(reader: asyncio.StreamReader) -> dict[str, str]:
    headers: dict[str, str] = {}
    for _ in range(MAX_HEADER_LINES):
        line = await reader.readline()
        if line in (b"\r\n", b"\n"):
            return headers
        if not line:
            raise asyncio.IncompleteReadError(b"", None)
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    raise ValueError("too many response headers")


async def _skip_chunked(reader: asyncio.StreamReader) -> None:
    while True:
        size_line = await reader.readline()
        if not size_line:
            raise asyncio.IncompleteReadError(b"", None)
        size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                pass
            return
        await reader.readexactly(size + 2)


__all__ = ["DeliveryError", "DeliveryTimeout", "HttpPostClient"]
