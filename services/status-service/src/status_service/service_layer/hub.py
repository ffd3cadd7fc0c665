"""Fan-out of read-model changes to the open event streams of one process.

The change feed hands every committed change to ``ChangeHub.publish`` (one LISTEN connection per
process, no query). The hub keeps, for each order that has at least one open stream, the latest
version it knows and a short history of recent changes, and wakes that order's streams; each stream
then takes the changes newer than the last one it sent from the shared history. A change therefore
costs one JSON decode per process and one socket write per stream, however many streams are open.

A stream that finds a gap (it fell behind the history, or notifications were lost while the feed
reconnected) fills it from the change log in the database; one read per order at a time, shared by
all of that order's streams.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections import deque
from collections.abc import Awaitable, Callable

from spawnpoint_kit.logs import get_logger

from .snapshot import Snapshot

log = get_logger(__name__)

ChangeLoader = Callable[[uuid.UUID, int], Awaitable[list[Snapshot]]]
"""``(order_id, after_version)`` -> the logged changes with a higher version, oldest first."""


class _Feed:
    """What the hub knows about one watched order."""

    __slots__ = ("changed", "history", "lock", "streams", "version")

    def __init__(self, history: int) -> None:
        self.version = 0
        self.history: deque[Snapshot] = deque(maxlen=history)
        self.changed = asyncio.Event()
        self.lock = asyncio.Lock()
        self.streams = 0

    def add(self, snapshot: Snapshot) -> bool:
        """Record a change; False when it is not newer than what is known."""
        if snapshot.version <= self.version:
            return False
        if self.history and self.history[-1].version >= snapshot.version:
            return False
        self.history.append(snapshot)
        self.version = snapshot.version
        changed, self.changed = self.changed, asyncio.Event()
        changed.set()
        return True


class ChangeHub:
    """In-process subscribers by order id."""

    def __init__(self, load_changes: ChangeLoader, *, history: int = 32) -> None:
        self._load_changes = load_changes
        self._history = history
        self._feeds: dict[uuid.UUID, _Feed] = {}

    def watched(self) -> list[uuid.UUID]:
        """Orders with at least one open stream."""
        return list(self._feeds)

    @property
    def streams(self) -> int:
        return sum(feed.streams for feed in self._feeds.values())

    def subscribe(self, order_id: uuid.UUID) -> Subscription:
        """Start watching an order (before reading its current state, so no change can slip between)."""
        feed = self._feeds.get(order_id)
        if feed is None:
            feed = self._feeds[order_id] = _Feed(self._history)
        feed.streams += 1
        return Subscription(self, order_id, feed)

    def publish(self, snapshot: Snapshot) -> None:
        """A committed change: wake the order's streams, if it has any."""
        feed = self._feeds.get(snapshot.order_id)
        if feed is not None:
            feed.add(snapshot)

    def _release(self, order_id: uuid.UUID, feed: _Feed) -> None:
        feed.streams -= 1
        if feed.streams <= 0 and self._feeds.get(order_id) is feed:
            del self._feeds[order_id]

    async def _changes_after(self, order_id: uuid.UUID, feed: _Feed, after: int) -> list[Snapshot]:
        newer = _contiguous_after(feed.history, after)
        if newer is not None:
            return newer
        async with feed.lock:  # one database read per order at a time, shared by its streams
            newer = _contiguous_after(feed.history, after)
            if newer is not None:
                return newer
            loaded = await self._load_changes(order_id, after)
            merged = {s.version: s for s in feed.history}
            merged.update((s.version, s) for s in loaded)
            ordered = [merged[v] for v in sorted(merged)]
            feed.history.clear()
            feed.history.extend(ordered)
            if ordered and ordered[-1].version > feed.version:
                feed.version = ordered[-1].version
                woken, feed.changed = feed.changed, asyncio.Event()
                woken.set()
        return [s for s in ordered if s.version > after]


def _contiguous_after(history: deque[Snapshot], after: int) -> list[Snapshot] | None:
    """The changes after ``after`` if the history holds every one of them, else None."""
    newer = [s for s in history if s.version > after]
    if not newer or newer[0].version != after + 1:
        return None
    for previous, current in itertools.pairwise(newer):
        if current.version != previous.version + 1:
            return None
    return newer


class Subscription:
    """One stream's view of its order's changes."""

    def __init__(self, hub: ChangeHub, order_id: uuid.UUID, feed: _Feed) -> None:
        self._hub = hub
        self._order_id = order_id
        self._feed = feed
        self._closed = False

    def seed(self, snapshot: Snapshot) -> None:
        """The state the stream read when it opened (the hub may not have heard of the order yet)."""
        self._feed.add(snapshot)

    async def changes_after(self, after: int) -> list[Snapshot]:
        """Wait until the order has a version above ``after``; return every change after it, in order."""
        feed = self._feed
        while feed.version <= after:
            await feed.changed.wait()
        return await self._hub._changes_after(self._order_id, feed, after)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._hub._release(self._order_id, self._feed)
