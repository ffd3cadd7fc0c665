"""order-service's repositories: the only code that reads and writes its tables.

Each is bound to the open unit of work's session (``service_layer/unit_of_work.py``); the handlers and use
cases see these methods, never SQL. Their in-memory twins are in ``order_service.testing``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from .tables import IdempotencyKeyRow, OrderRow


class OrderRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    def add(self, order: OrderRow) -> None:
        self._session.add(order)

    async def get(self, order_id: uuid.UUID) -> OrderRow | None:
        return await self._session.get(OrderRow, order_id)

    async def lock(self, order_id: uuid.UUID) -> OrderRow | None:
        """The order, locked until the transaction ends (concurrent payment facts serialise)."""
        return (await self._session.exec(select(OrderRow).where(OrderRow.id == order_id).with_for_update())).first()


class IdempotencyKeyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def claim(self, *, user_id: str, key: str, request_hash: str, order_id: uuid.UUID) -> bool:
        """Store the key for ``order_id``; False when the user used it before (a concurrent insert waits for
        the other transaction, so two requests with one key never both win)."""
        claimed = await self._session.exec(
            insert(IdempotencyKeyRow)
            .values(
                user_id=user_id, key=key, request_hash=request_hash, order_id=order_id, created_at=datetime.now(UTC)
            )
            .on_conflict_do_nothing(index_elements=["user_id", "key"])
            .returning(sa.literal(1))
        )
        return claimed.first() is not None

    async def get(self, *, user_id: str, key: str) -> IdempotencyKeyRow:
        return (
            await self._session.exec(
                select(IdempotencyKeyRow).where(IdempotencyKeyRow.user_id == user_id, IdempotencyKeyRow.key == key)
            )
        ).one()
