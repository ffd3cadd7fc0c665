"""Operator endpoints every service has: its outbox's parked rows, and putting them back in line.

A row the relay parked (it failed on its own too often: unroutable, refused) waits here for a person. The
endpoints need an operator token; ``spawnctl outbox list|retry`` calls them on every service:

- ``GET /operator/outbox?state=parked`` (or ``pending``): the rows, newest problems first, with
  ``last_error``;
- ``POST /operator/outbox/{id}/retry``: clear the row's parking and attempts; the relay publishes it at once;
- ``POST /operator/outbox/retry-parked``: the same for every parked row.

The service's database is never read by anyone else: this is how an operator sees into it.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncEngine

from .auth import OperatorPrincipal
from .logs import get_logger

log = get_logger(__name__)

_LIST = sa.text(
    """
    SELECT id, message_type, routing_key, order_id, attempts, last_error, created_at, available_at, parked_at
    FROM outbox
    WHERE published_at IS NULL AND ((:state = 'parked') = (parked_at IS NOT NULL))
    ORDER BY coalesce(parked_at, available_at) DESC
    LIMIT :limit
    """
)
_RETRY_ONE = sa.text(
    "UPDATE outbox SET parked_at = NULL, attempts = 0, available_at = now() "
    "WHERE id = :id AND published_at IS NULL RETURNING id"
)
_RETRY_PARKED = sa.text(
    "UPDATE outbox SET parked_at = NULL, attempts = 0, available_at = now() "
    "WHERE parked_at IS NOT NULL AND published_at IS NULL"
)
_WAKE = sa.text("SELECT pg_notify('spawnpoint_outbox', '')")


class OutboxRowOut(BaseModel):
    id: uuid.UUID
    message_type: str
    routing_key: str
    order_id: uuid.UUID | None
    attempts: int
    last_error: str | None
    created_at: datetime
    available_at: datetime
    parked_at: datetime | None = Field(description="Set when the relay set the row aside for an operator.")


class RetriedOut(BaseModel):
    retried: int


def outbox_router(engine: AsyncEngine, *, service: str) -> APIRouter:
    """The outbox endpoints of one service (its engine), for operators only."""
    router = APIRouter(prefix="/operator/outbox", tags=["operations"])

    @router.get("", response_model=list[OutboxRowOut], summary="Unpublished outbox rows (parked ones by default)")
    async def list_rows(
        _: OperatorPrincipal,
        state: Literal["parked", "pending"] = "parked",
        limit: int = Query(default=100, ge=1, le=1000),
    ) -> list[OutboxRowOut]:
        async with engine.connect() as conn:
            rows = (await conn.execute(_LIST, {"state": state, "limit": limit})).mappings().all()
        return [OutboxRowOut.model_validate(dict(row)) for row in rows]

    @router.post(
        "/{row_id}/retry",
        response_model=RetriedOut,
        summary="Put one unpublished row back in line",
        responses={404: {"description": "No unpublished row with this id"}},
    )
    async def retry_one(row_id: uuid.UUID, principal: OperatorPrincipal) -> RetriedOut:
        async with engine.begin() as conn:
            found = (await conn.execute(_RETRY_ONE, {"id": row_id})).first()
            await conn.execute(_WAKE)
        if found is None:
            raise HTTPException(status_code=404, detail="no unpublished outbox row with this id")
        log.info("outbox row retried by an operator", row_id=str(row_id), operator=principal.user_id, service=service)
        return RetriedOut(retried=1)

    @router.post("/retry-parked", response_model=RetriedOut, summary="Put every parked row back in line")
    async def retry_parked(principal: OperatorPrincipal) -> RetriedOut:
        async with engine.begin() as conn:
            result = await conn.execute(_RETRY_PARKED)
            await conn.execute(_WAKE)
        count = int(result.rowcount or 0)
        log.info("parked outbox rows retried by an operator", count=count, operator=principal.user_id, service=service)
        return RetriedOut(retried=count)

    return router
