"""``GET /orders/{id}/events``: one order's status as Server-Sent Events.

The stream sends the current state at once, then every change as it is projected, with heartbeats in
between (comments, which browsers ignore). Every frame's ``id`` is the read model's ``version``, a
per-order sequence that grows by one with each visible change, so resuming is exact: a client that
reconnects with ``Last-Event-ID: n`` receives the changes n+1, n+2, ... it missed (from the change log,
whichever process it reaches) and nothing twice. With an id it cannot place (not a number, or newer
than anything this order has) it receives the current state, as a new client would.

Streams do not query the database per change: they wait on the process's stream hub, which the single
LISTEN connection feeds (see ``change_feed.py`` and ``service_layer/hub.py``).
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable

from sse_starlette import ServerSentEvent

from ..metrics import OPEN_STREAMS, STREAM_DELIVERY
from ..service_layer.queries import StatusQueries


def resume_point(last_event_id: str | None) -> int | None:
    """The version a reconnecting client last received, when its ``Last-Event-ID`` is one of ours."""
    # ASCII digits only: "²".isdigit() is True and int("²") raises (after the 200 was sent, the stream died).
    if last_event_id is None or not re.fullmatch(r"[0-9]{1,18}", last_event_id.strip()):
        return None
    return int(last_event_id.strip())


async def status_events(
    queries: StatusQueries,
    order_id: uuid.UUID,
    last_event_id: str | None,
    *,
    retry_ms: int,
    ends_at: float | None = None,
    release: Callable[[], None] | None = None,
) -> AsyncIterator[bytes]:
    """The frames of one stream, until the client goes away (the generator is then cancelled) or its token
    expires at ``ends_at`` (the stream ends; the browser reconnects with a fresh token and ``Last-Event-ID``,
    missing nothing).

    The caller has checked that the customer may see the order. Everything that must be undone lives
    inside this generator, so a client that leaves before the first frame leaks nothing."""
    subscription = queries.hub.subscribe(order_id)  # before reading the state: no change slips between
    OPEN_STREAMS.inc()
    try:
        current = await queries.cache.get(order_id)
        if current is None:
            return
        subscription.seed(current)
        yield b"retry: %d\n\n" % retry_ms
        resume = resume_point(last_event_id)
        catching_up = resume is not None and 0 <= resume < current.version
        if resume is not None and 0 <= resume <= current.version:
            sent = resume
        else:
            yield current.sse
            sent = current.version
        while True:
            remaining = None if ends_at is None else ends_at - time.time()
            if remaining is not None and remaining <= 0:
                return  # the token has expired: a stream never outlives the credentials that opened it
            try:
                changes = await asyncio.wait_for(subscription.changes_after(sent), timeout=remaining)
            except TimeoutError:
                return
            for change in changes:
                if change.version <= sent:
                    continue
                yield change.sse
                sent = change.version
                if not catching_up and change.changed_at is not None:
                    STREAM_DELIVERY.observe(max(0.0, time.time() - change.changed_at.timestamp()))
            catching_up = False
    finally:
        subscription.close()
        OPEN_STREAMS.dec()
        if release is not None:
            release()


def heartbeat() -> ServerSentEvent:
    """The comment sent on an idle stream (browsers ignore comments; proxies see traffic)."""
    return ServerSentEvent(comment="heartbeat")
