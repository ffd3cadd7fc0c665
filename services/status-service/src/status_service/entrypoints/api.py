"""status-service HTTP API: the customer's view of an order's progress."""

from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field

from spawnpoint_kit.auth import CurrentPrincipal

from ..adapters.tables import OrderStatusRow
from ..service_layer.projector import read_status

router = APIRouter()


class StatusOut(BaseModel):
    order_id: uuid.UUID
    status: str = Field(description="PENDING, PAID, CREATED or FAILED (what frontends switch on)")
    phase: str = Field(description="The finer state, e.g. awaiting_payment, installing, ready, expired")
    message: str
    server_id: str | None = Field(description="The panel's server identifier once the server exists")
    connect_path: str | None = Field(description="/gameserver/{server_id} once the server is ready")
    updated_at: datetime

    @classmethod
    def of(cls, row: OrderStatusRow) -> StatusOut:
        return cls(
            order_id=row.order_id,
            status=row.status,
            phase=row.phase,
            message=row.message,
            server_id=row.server_id,
            connect_path=row.connect_path,
            updated_at=row.updated_at,
        )


@router.get(
    "/orders/{order_id}/status",
    response_model=StatusOut,
    tags=["status"],
    summary="How far along the order's server is (served from the read model only)",
    responses={404: {"description": "Server not found: no such order for this caller"}},
)
async def order_status(order_id: uuid.UUID, request: Request, principal: CurrentPrincipal) -> StatusOut:
    row = await read_status(request.app.state.runtime.sessions, order_id)
    if row is None or (row.user_id != principal.user_id and not principal.is_operator):
        raise HTTPException(status_code=404, detail="order not found")
    return StatusOut.of(row)
