"""What the HTTP API asks, answered from the read model only (never another service, never the panel).

``StatusQueries`` bundles the status cache, the stream hub and the database reads, and applies the one
access rule every endpoint shares: a customer sees only orders whose read model names them as the
owner; anything else, including an order that does not exist (yet), looks the same: not found.
Operators see every order.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from spawnpoint_kit.auth import Principal

from . import reads
from .cache import StatusCache
from .hub import ChangeHub
from .snapshot import Snapshot


def can_see(snapshot: Snapshot, principal: Principal) -> bool:
    return principal.is_operator or (snapshot.user_id is not None and snapshot.user_id == principal.user_id)


@dataclass
class StatusQueries:
    engine: AsyncEngine
    cache: StatusCache
    hub: ChangeHub

    @classmethod
    def create(cls, engine: AsyncEngine, *, cache_size: int) -> StatusQueries:
        async def load(order_id: uuid.UUID) -> Snapshot | None:
            return await reads.load_snapshot(engine, order_id)

        async def load_changes(order_id: uuid.UUID, after: int) -> list[Snapshot]:
            return await reads.load_changes(engine, order_id, after)

        return cls(engine, StatusCache(load, capacity=cache_size), ChangeHub(load_changes))

    async def visible(self, order_id: uuid.UUID, principal: Principal) -> Snapshot | None:
        """The order's current status if the caller may see it, else None (answered as 404)."""
        snapshot = await self.cache.get(order_id)
        if snapshot is None or not can_see(snapshot, principal):
            return None
        return snapshot

    async def current(self, order_ids: list[uuid.UUID]) -> list[Snapshot]:
        return await reads.load_snapshots(self.engine, order_ids)

    async def owned(
        self, principal: Principal, *, limit: int, before: tuple[datetime, uuid.UUID] | None
    ) -> list[reads.OwnedOrder]:
        """The caller's own orders (by the token's subject: an operator lists their own too), newest first."""
        return await reads.load_owned(self.engine, principal.user_id, limit=limit, before=before)

    async def events(self, order_id: uuid.UUID) -> list[reads.StoredEvent]:
        return await reads.load_events(self.engine, order_id)

    async def changes(self, order_id: uuid.UUID) -> list[Snapshot]:
        return await reads.load_change_log(self.engine, order_id)
