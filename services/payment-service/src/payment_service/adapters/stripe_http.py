"""The Stripe SDK's HTTP on the kit's HTTP/1.1 client (``spawnpoint_kit.http11``) instead of httpx.

Why: every order makes two or three Stripe calls from payment-service (its Checkout Session created, then
retrieved for its stored event, and for the return page), and through the SDK's ``HTTPXClient`` each went
through httpx's client, httpcore's pool and anyio's streams: a sixth of payment-service's profile samples in
a burst were there, for requests the kit's client makes in a fraction of the calls (decision 51). The SDK
keeps everything else: authentication, idempotency keys, its retries (``max_network_retries``, which ask
``should_retry`` of a connection error), its error classes and its telemetry header.

``StripeHttp11Client`` is a ``stripe.HTTPClient`` (the SDK's documented way to bring one's own): one pool of
kept-alive connections per origin (Stripe's API, or the stand-in in development), async only. A request that
gets no complete answer is the SDK's ``APIConnectionError`` with ``should_retry``, as the SDK's own clients
raise it, so the SDK retries it under the same idempotency key.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx
import stripe

from spawnpoint_kit.http11 import Http11Pool, HttpUnreachable


class StripeHttp11Client(stripe.HTTPClient):
    name = "spawnpoint-http11"

    def __init__(self, *, timeout: float, connect_timeout: float = 5.0, max_idle: int = 16) -> None:
        super().__init__()
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self._max_idle = max_idle
        self._pools: dict[str, Http11Pool] = {}

    async def request_async(
        self, method: str, url: str, headers: Mapping[str, str], post_data: Any = None
    ) -> tuple[bytes, int, Mapping[str, str]]:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        pool = self._pools.get(origin)
        if pool is None:
            pool = self._pools[origin] = Http11Pool(
                origin,
                headers={},
                timeout=self._timeout,
                connect_timeout=self._connect_timeout,
                max_idle=self._max_idle,
            )
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        body = post_data.encode() if isinstance(post_data, str) else post_data
        sent = {name: value for name, value in headers.items() if name.lower() != "content-length"}
        try:
            response = await pool.request(method.upper(), target, content=body or None, extra_headers=sent)
        except HttpUnreachable as exc:
            raise stripe.APIConnectionError(  # type: ignore[no-untyped-call]
                f"Unexpected error communicating with Stripe ({exc})", should_retry=True
            ) from exc
        # The SDK reads headers in either case ("Request-Id", "stripe-should-retry").
        return response.content, response.status_code, httpx.Headers(dict(response.headers))

    def sleep_async(self, secs: float) -> Any:
        return asyncio.sleep(secs)

    def close(self) -> None:
        """Nothing to close synchronously: the connections are the event loop's (``close_async``). Async
        only: the sync and streaming requests are the base class's (``NotImplementedError``)."""

    async def close_async(self) -> None:
        pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            await pool.aclose()
