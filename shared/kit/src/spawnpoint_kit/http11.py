"""HTTP/1.1 with h11 on asyncio's transports, over a few kept-alive connections: the client of the hot
paths' calls (the provisioner's to the panel, payment-service's to Stripe and to order-service).

Why not httpx: every panel request went through httpx's client (URL merging, cookies, auth and redirect
hooks), httpcore's pool (which walks its whole pool, and for each idle connection the pool again, twice per
request) and anyio's stream wrappers; about 4,000 Python function calls and 2.6 ms of CPU per request here,
with the pool kept to 8 connections. The same requests on h11 directly take about 600 calls and 0.5 ms
(measured with the panel stand-in); an order makes four of them, and three more to Stripe and
order-service. h11 is the HTTP/1.1 state machine httpx
itself uses, so the framing (``Content-Length``, chunked bodies, ``Connection: close``) is parsed the same.

What it does: ``http`` and ``https`` (certificates verified against ``SSL_CERT_FILE``/``SSL_CERT_DIR`` if
set, else certifi's bundle, as httpx did), one total deadline per request (``timeout``, connecting within
``connect_timeout``), keep-alive (an idle connection is reused for ``keepalive_seconds``, then closed; one
the panel closed, or sent anything on, meanwhile is never reused). What it leaves out, since the panel's
APIs it calls need none of it: proxies, redirects, compression, cookies, HTTP/2. Concurrency is the caller's to
bound (``PanelClient`` lets ``max_connections`` requests out at a time; the pool keeps that many idle).

Any failure to get a complete answer (refused, reset, timed out, a malformed or truncated response) is an
``HttpUnreachable``: the request may or may not have been applied, and its connection is closed.

With tracing on, each request is a CLIENT span (what httpx's instrumentation made of it) and carries its
context in ``traceparent``, so the called service's work sits in the same trace.
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import certifi
import h11

from . import tracing


class HttpUnreachable(Exception):
    """No complete answer: refused, dropped, timed out or malformed. The outcome of the request is unknown."""


@dataclass(frozen=True)
class HttpResponse:
    status_code: int
    headers: Mapping[str, str]
    """Lower-cased names; a repeated header keeps its last value."""
    content: bytes

    def json(self) -> Any:
        return json.loads(self.content)

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")


def tls_context() -> ssl.SSLContext:
    """Certificates as httpx verified them: ``SSL_CERT_FILE`` or ``SSL_CERT_DIR`` if set, else certifi's."""
    if os.environ.get("SSL_CERT_FILE"):
        return ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
    if os.environ.get("SSL_CERT_DIR"):
        return ssl.create_default_context(capath=os.environ["SSL_CERT_DIR"])
    return ssl.create_default_context(cafile=certifi.where())


class _Wire(asyncio.Protocol):
    """One connection's bytes as they arrive (asyncio's streams add a layer this needs none of), so an idle
    connection can tell whether anything came in or the panel hung up meanwhile."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.closed = False
        self._waiter: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self._wake()

    def eof_received(self) -> bool:
        self.closed = True
        self._wake()
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._wake()

    async def read(self) -> bytes:
        """What arrived since the last read, waiting for something; ``b""`` once the connection is closed."""
        while not self.buffer and not self.closed:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        data = bytes(self.buffer)
        self.buffer.clear()
        return data

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


class _Connection:
    def __init__(self, wire: _Wire) -> None:
        self.wire = wire
        self.protocol = h11.Connection(h11.CLIENT)
        self.idle_since = time.monotonic()

    def reusable(self, now: float, keepalive_seconds: float) -> bool:
        """Not idle too long, still open, and nothing arrived while idle (a panel or proxy closing an idle
        connection may first send a 408, which must never be read as the next request's answer)."""
        transport = self.wire.transport
        return (
            now - self.idle_since < keepalive_seconds
            and transport is not None
            and not transport.is_closing()
            and not self.wire.closed
            and not self.wire.buffer
        )

    async def exchange(self, request: h11.Request, body: bytes) -> tuple[HttpResponse, bool]:
        """Send one request, read its whole response; also whether the connection can carry the next one."""
        protocol, transport = self.protocol, self.wire.transport
        if transport is None:
            raise HttpUnreachable("the connection is not open")
        data = protocol.send(request) or b""
        if body:
            data += protocol.send(h11.Data(data=body)) or b""
        data += protocol.send(h11.EndOfMessage()) or b""
        transport.write(data)
        status = 0
        headers: dict[str, str] = {}
        chunks: list[bytes] = []
        while True:
            event = protocol.next_event()
            if event is h11.NEED_DATA:
                protocol.receive_data(await self.wire.read())  # b"" once closed: h11 then says so
            elif isinstance(event, h11.Response):
                status = event.status_code
                headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in event.headers}
            elif isinstance(event, h11.Data):
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                break
            elif isinstance(event, h11.ConnectionClosed):
                raise HttpUnreachable("the connection closed before the response was complete")
            # an InformationalResponse (1xx) is skipped: the final response follows
        reusable = protocol.our_state is h11.DONE and protocol.their_state is h11.DONE
        if reusable:
            protocol.start_next_cycle()
        return HttpResponse(status, headers, b"".join(chunks)), reusable

    def close(self) -> None:
        if self.wire.transport is not None:
            self.wire.transport.close()


class Http11Pool:
    """Requests to one origin (``base_url``, whose path prefixes every request's), on kept-alive connections."""

    def __init__(
        self,
        base_url: str,
        *,
        headers: Mapping[str, str],
        timeout: float,
        connect_timeout: float,
        max_idle: int,
        keepalive_seconds: float = 5.0,
    ) -> None:
        url = urlsplit(base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self._host = url.hostname
        self._port = url.port or (443 if url.scheme == "https" else 80)
        self._tls = tls_context() if url.scheme == "https" else None
        self._prefix = url.path.rstrip("/")
        default_port = self._port == (443 if url.scheme == "https" else 80)
        name = f"[{self._host}]" if ":" in self._host else self._host  # an IPv6 literal keeps its brackets
        host = name if default_port else f"{name}:{self._port}"
        self._origin = f"{url.scheme}://{host}"
        self._headers = [("Host", host), *headers.items()]
        self._timeout = timeout
        self._connect_timeout = min(connect_timeout, timeout)
        self._max_idle = max_idle
        self._keepalive = keepalive_seconds
        self._idle: list[_Connection] = []

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        content: bytes | None = None,
        extra_headers: Mapping[str, str] | None = None,
        span_attributes: Mapping[str, Any] | None = None,
    ) -> HttpResponse:
        """One request; its body is ``json_body`` as JSON, or ``content`` as it is (its ``Content-Type`` in
        ``extra_headers``). ``span_attributes`` are added to its span when tracing is on."""
        body = content if content is not None else b"" if json_body is None else json.dumps(json_body).encode()
        if not tracing.ENABLED:
            return await self._request(method, self.target(path, params), body, extra_headers)
        host, port = self.address
        attributes = {
            "http.request.method": method,
            "url.full": self.url(path, params),
            "server.address": host,
            "server.port": port,
            **(span_attributes or {}),
        }
        with tracing.span(method, kind="client", attributes=attributes):
            response = await self._request(
                method, self.target(path, params), body, {**(extra_headers or {}), **tracing.current_headers()}
            )
            tracing.annotate({"http.response.status_code": response.status_code})
            if response.status_code >= 400:
                tracing.fail(f"HTTP {response.status_code}")
            return response

    async def _request(
        self, method: str, target: str, body: bytes, extra_headers: Mapping[str, str] | None
    ) -> HttpResponse:
        headers = self._headers
        # A POST without a body still says so (some proxies answer 411 Length Required otherwise).
        if body or method in ("POST", "PUT", "PATCH"):
            headers = [*headers, ("Content-Length", str(len(body)))]
        if extra_headers:
            headers = [*headers, *extra_headers.items()]
        request = h11.Request(method=method, target=target, headers=headers)
        connection: _Connection | None = None
        try:
            async with asyncio.timeout(self._timeout):
                connection = self._take() or await self._connect()
                response, reusable = await connection.exchange(request, body)
        except HttpUnreachable:
            self._discard(connection)
            raise
        except (OSError, TimeoutError, h11.ProtocolError) as exc:
            self._discard(connection)
            raise HttpUnreachable(f"{type(exc).__name__}: {exc}") from exc
        except BaseException:  # cancelled mid-request: the connection's state is unknown
            self._discard(connection)
            raise
        self._give_back(connection, reusable)
        return response

    def target(self, path: str, params: Mapping[str, Any] | None = None) -> str:
        """The request target of ``path`` (the base URL's path before it, the query after it)."""
        return self._prefix + path + (f"?{urlencode(params)}" if params else "")

    def url(self, path: str, params: Mapping[str, Any] | None = None) -> str:
        """The full URL of a request (what a trace shows)."""
        return f"{self._origin}{self.target(path, params)}"

    @property
    def address(self) -> tuple[str, int]:
        return self._host, self._port

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    def _take(self) -> _Connection | None:
        now = time.monotonic()
        while self._idle:
            connection = self._idle.pop()  # the most recently used: the likeliest to be still open
            if connection.reusable(now, self._keepalive):
                return connection
            connection.close()
        return None

    async def _connect(self) -> _Connection:
        async with asyncio.timeout(self._connect_timeout):
            _, wire = await asyncio.get_running_loop().create_connection(
                _Wire, self._host, self._port, ssl=self._tls, server_hostname=self._host if self._tls else None
            )
        return _Connection(wire)

    def _give_back(self, connection: _Connection, reusable: bool) -> None:
        if reusable and len(self._idle) < self._max_idle:
            connection.idle_since = time.monotonic()
            self._idle.append(connection)
        else:
            connection.close()

    @staticmethod
    def _discard(connection: _Connection | None) -> None:
        if connection is not None:
            connection.close()
