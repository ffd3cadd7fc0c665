"""The same-origin gateway: ``/api/{service}/...`` is forwarded to that service, as a shop's ingress would.

So the services need no CORS and the browser sends the bearer token to one origin. What it does and why:

- **Hop-by-hop headers are dropped** both ways (RFC 9110 §7.6.1: ``Connection`` and the headers it names,
  ``Keep-Alive``, ``TE``, ``Transfer-Encoding``, ``Upgrade``, ...): they describe one connection, not the
  message. ``Host`` becomes the service's; ``X-Forwarded-*`` tell it who asked.
- **Bounded timeouts**: connecting, writing and each read are limited, so a stuck service costs the page an
  error instead of a hanging request; request bodies are capped (the APIs take small JSON).
- **Streaming**: answers are passed through as they arrive, chunk by chunk, which is what the status event
  stream (Server-Sent Events) needs; its read timeout is ``stream_idle_seconds`` (the service sends a
  heartbeat every 15 s, so silence that long means a dead connection).
- **Test control** (``STOREFRONT_TEST_CONTROLS``, never in production): ``StreamCutter`` can cut every open
  event stream and refuse new ones, the "stream dropped mid-install" the page must survive by polling.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
MAX_BODY_BYTES = 256 * 1024
"""The services' JSON bodies are a few kilobytes; status-service itself refuses more than 64 KiB."""


def _connection_tokens(headers: httpx.Headers | list[tuple[str, str]]) -> set[str]:
    items = headers.multi_items() if isinstance(headers, httpx.Headers) else headers
    named: set[str] = set()
    for key, value in items:
        if key.lower() == "connection":
            named.update(token.strip().lower() for token in value.split(",") if token.strip())
    return named


def request_headers(request: Request) -> list[tuple[str, str]]:
    """The browser's headers as the service should get them."""
    raw = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw]
    drop = HOP_BY_HOP | _connection_tokens(raw) | {"host", "content-length", "cookie"}
    headers = [(k, v) for k, v in raw if k.lower() not in drop and not k.lower().startswith("x-forwarded-")]
    client = request.client.host if request.client else ""
    headers += [
        ("x-forwarded-for", client),
        ("x-forwarded-proto", request.url.scheme),
        ("x-forwarded-host", request.headers.get("host", "")),
    ]
    return headers


def response_headers(upstream: httpx.Response) -> list[tuple[str, str]]:
    """The service's headers as the browser should get them (``Content-Length`` kept: the bytes are raw)."""
    drop = HOP_BY_HOP | _connection_tokens(upstream.headers)
    return [(k, v) for k, v in upstream.headers.multi_items() if k.lower() not in drop]


@dataclass
class StreamCutter:
    """The open event streams, so a test can cut them (and refuse new ones until it allows them again)."""

    blocked: bool = False
    _cuts: set[asyncio.Event] = field(default_factory=set)

    def open(self) -> asyncio.Event:
        cut = asyncio.Event()
        self._cuts.add(cut)
        return cut

    def close(self, cut: asyncio.Event) -> None:
        self._cuts.discard(cut)

    def cut_all(self, *, block: bool) -> int:
        self.blocked = block
        for cut in self._cuts:
            cut.set()
        return len(self._cuts)

    @property
    def open_streams(self) -> int:
        return len(self._cuts)


class Gateway:
    """Forwards one request to one service and streams the answer back."""

    def __init__(self, services: dict[str, str], *, timeout: float, stream_idle: float) -> None:
        self.services = services
        self.cutter = StreamCutter()
        self._timeout = httpx.Timeout(timeout, connect=min(timeout, 5.0), pool=5.0)
        self._stream_timeout = httpx.Timeout(stream_idle, connect=min(timeout, 5.0), pool=5.0)
        self._client = httpx.AsyncClient(follow_redirects=False, limits=httpx.Limits(max_connections=500))

    async def aclose(self) -> None:
        await self._client.aclose()

    async def forward(self, request: Request, service: str, path: str) -> Response:
        base = self.services.get(service)
        if base is None:
            return JSONResponse({"detail": f"no such API: {service}"}, status_code=404)
        is_stream = path.endswith("/events") or "text/event-stream" in request.headers.get("accept", "")
        if is_stream and self.cutter.blocked:
            return JSONResponse(
                {"detail": "event streams are switched off for this test; poll"},
                status_code=503,
                headers={"Retry-After": "5"},
            )
        body = await _bounded_body(request)
        if body is None:
            return JSONResponse({"detail": f"the request body is larger than {MAX_BODY_BYTES} bytes"}, status_code=413)
        upstream_request = self._client.build_request(
            request.method,
            f"{base}/{path}",
            params=str(request.query_params),
            headers=request_headers(request),
            content=body,
            timeout=self._stream_timeout if is_stream else self._timeout,
        )
        try:
            upstream = await self._client.send(upstream_request, stream=True)
        except httpx.TimeoutException:
            return JSONResponse({"detail": f"{service} did not answer in time"}, status_code=504)
        except httpx.HTTPError:
            return JSONResponse({"detail": f"{service} is unreachable"}, status_code=502)
        chunks = self._stream(upstream) if is_stream else _relay(upstream)
        return StreamingResponse(
            chunks,
            status_code=upstream.status_code,
            headers=dict(_joined(response_headers(upstream))),
            background=BackgroundTask(upstream.aclose),
        )

    async def _stream(self, upstream: httpx.Response) -> AsyncIterator[bytes]:
        """An event stream's bytes until the service ends it, it goes silent, or a test cuts it."""
        cut = self.cutter.open()
        chunks = upstream.aiter_raw().__aiter__()
        try:
            while not cut.is_set():
                next_chunk = asyncio.ensure_future(chunks.__anext__())
                cut_wait = asyncio.ensure_future(cut.wait())
                done, _ = await asyncio.wait({next_chunk, cut_wait}, return_when=asyncio.FIRST_COMPLETED)
                cut_wait.cancel()
                if next_chunk not in done:
                    next_chunk.cancel()
                    break
                try:
                    yield next_chunk.result()
                except (StopAsyncIteration, httpx.HTTPError):
                    break
        finally:
            self.cutter.close(cut)
            await upstream.aclose()


async def _relay(upstream: httpx.Response) -> AsyncIterator[bytes]:
    try:
        async for chunk in upstream.aiter_raw():
            yield chunk
    except httpx.HTTPError:
        return  # the answer is cut short; the browser sees a truncated body and the page retries


def _joined(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Starlette takes a mapping: repeated headers other than Set-Cookie are joined with commas."""
    merged: dict[str, str] = {}
    for key, value in headers:
        lower = key.lower()
        merged[lower] = f"{merged[lower]}, {value}" if lower in merged else value
    return list(merged.items())


async def _bounded_body(request: Request) -> bytes | None:
    size = 0
    parts: list[bytes] = []
    async for part in request.stream():
        size += len(part)
        if size > MAX_BODY_BYTES:
            return None
        parts.append(part)
    return b"".join(parts)
