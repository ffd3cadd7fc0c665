"""The process's one LISTEN connection: every committed read-model change, to the cache and the streams.

The projector sends ``pg_notify(CHANNEL, <snapshot>)`` in the transaction that changes a row, so the
notification arrives at commit, in commit order, at every status-service process (each listens on its
own connection). Each payload is decoded once and handed to the status cache and to the stream hub.

Notifications are lost while a listener is disconnected. So while the feed is down the cache is off
(polls read the database), and when it is back the cache restarts empty and every watched order is
re-read once, which wakes its streams to fill whatever they missed from the change log.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable

from spawnpoint_kit.db import asyncpg_dsn
from spawnpoint_kit.logs import get_logger
from spawnpoint_kit.notify import listen

from ..adapters.repositories import CHANNEL
from ..metrics import FEED_CONNECTED
from ..service_layer.cache import StatusCache
from ..service_layer.hub import ChangeHub
from ..service_layer.snapshot import Snapshot

log = get_logger(__name__)

CurrentLoader = Callable[[list[uuid.UUID]], Awaitable[list[Snapshot]]]


class ChangeFeed:
    def __init__(self, database_url: str, cache: StatusCache, hub: ChangeHub, load_current: CurrentLoader) -> None:
        self._dsn = asyncpg_dsn(database_url)
        self._cache = cache
        self._hub = hub
        self._load_current = load_current
        self._catch_up: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        """Listen until ``stop`` (a runtime background job)."""
        try:
            await listen(
                self._dsn,
                CHANNEL,
                asyncio.Event(),
                stop,
                on_notify=self._on_notify,
                on_connect=self._on_connect,
                on_disconnect=self._on_disconnect,
            )
        finally:
            if self._catch_up is not None:
                self._catch_up.cancel()

    def _on_notify(self, payload: str) -> None:
        snapshot = Snapshot.from_notify(payload)
        self._cache.publish(snapshot)
        self._hub.publish(snapshot)

    def _on_connect(self) -> None:
        self._cache.enable()
        self.connected.set()
        FEED_CONNECTED.set(1)
        log.info("listening for status changes", channel=CHANNEL)
        self._catch_up = asyncio.ensure_future(self._resync_streams())

    def _on_disconnect(self) -> None:
        self._cache.disable()
        self.connected.clear()
        FEED_CONNECTED.set(0)
        log.warning("status change feed lost; polling reads the database until it is back")

    async def _resync_streams(self) -> None:
        """Changes committed while we were not listening: re-read every watched order once."""
        watched = self._hub.watched()
        if not watched:
            return
        try:
            for snapshot in await self._load_current(watched):
                self._hub.publish(snapshot)
        except Exception as exc:
            log.exception("could not re-read watched orders after reconnecting", error=repr(exc))
