"""The customer's rental routes: read it, cancel at the period end and take that back, change plan, and
open Stripe's customer portal. Owner only: anyone else's order is a 404, like an unknown one."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

import stripe
from fastapi import APIRouter, HTTPException, Path
from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field

from spawnpoint_contracts import RentalPhase
from spawnpoint_kit.auth import CurrentPrincipal
from spawnpoint_kit.logs import get_logger

from ..adapters.order_client import OrderServiceUnavailable, PlanNotOffered
from ..adapters.tables import RentalRow
from ..deps import RentalActionsDep, StripeCallDep
from ..service_layer.rental_actions import NotChangeable, RentalNotFound

log = get_logger(__name__)
router = APIRouter(tags=["rentals"])

OrderId = Annotated[uuid.UUID, Path(description="The order the rental was bought with.")]


class RentalOut(BaseModel):
    order_id: uuid.UUID
    phase: RentalPhase
    kind: str
    plan_id: str
    period_id: str
    paid_through: datetime | None
    renews_at: datetime | None
    ends_at: datetime | None
    next_payment_attempt: datetime | None
    grace_until: datetime | None
    terminate_at: datetime | None
    version: int

    @classmethod
    def of(cls, row: RentalRow) -> RentalOut:
        return cls(
            order_id=row.order_id,
            phase=row.phase,
            kind=row.kind,
            plan_id=row.plan_id,
            period_id=row.period_id,
            paid_through=row.paid_through,
            renews_at=row.renews_at,
            ends_at=row.ends_at,
            next_payment_attempt=row.next_payment_attempt,
            grace_until=row.grace_until,
            terminate_at=row.terminate_at,
            version=row.version,
        )


class PlanIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    plan_id: str = Field(min_length=1, max_length=63, pattern=r"^[a-z0-9][a-z0-9-]*$")


class PortalIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    order_id: uuid.UUID
    return_url: AnyHttpUrl | None = None


class PortalOut(BaseModel):
    url: str


_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such rental for this caller"},
    409: {"description": "The rental cannot do that in its state (the detail says why)"},
    503: {"description": "Stripe or order-service is unreachable; retry"},
}


def _failed(exc: Exception) -> HTTPException:
    if isinstance(exc, RentalNotFound):
        return HTTPException(status_code=404, detail="rental not found")
    if isinstance(exc, NotChangeable):
        return HTTPException(status_code=409, detail=str(exc))
    if isinstance(exc, PlanNotOffered):
        return HTTPException(status_code=422, detail=[{"field": "plan_id", "message": str(exc)}])
    log.warning("rental action failed upstream", error=str(getattr(exc, "user_message", None) or exc))
    return HTTPException(status_code=503, detail="the payment provider is unavailable; try again")


_HANDLED = (RentalNotFound, NotChangeable, PlanNotOffered, OrderServiceUnavailable, stripe.StripeError)


@router.get("/rentals/{order_id}", response_model=RentalOut, summary="The caller's rental", responses=_ERRORS)
async def read_rental(order_id: OrderId, principal: CurrentPrincipal, actions: RentalActionsDep) -> RentalOut:
    try:
        return RentalOut.of(await actions.rental(principal, order_id))
    except _HANDLED as exc:
        raise _failed(exc) from exc


@router.post(
    "/rentals/{order_id}/cancellation",
    response_model=RentalOut,
    summary="Cancel at the end of the paid period (the server runs until then); repeating it changes nothing",
    responses=_ERRORS,
)
async def cancel_rental(
    order_id: OrderId, principal: CurrentPrincipal, actions: RentalActionsDep, _: StripeCallDep
) -> RentalOut:
    try:
        return RentalOut.of(await actions.cancel(principal, order_id))
    except _HANDLED as exc:
        raise _failed(exc) from exc


@router.delete(
    "/rentals/{order_id}/cancellation",
    response_model=RentalOut,
    summary="Take a cancellation back before the period ends: the rental renews again",
    responses=_ERRORS,
)
async def undo_cancellation(
    order_id: OrderId, principal: CurrentPrincipal, actions: RentalActionsDep, _: StripeCallDep
) -> RentalOut:
    try:
        return RentalOut.of(await actions.undo_cancel(principal, order_id))
    except _HANDLED as exc:
        raise _failed(exc) from exc


@router.post(
    "/rentals/{order_id}/plan",
    response_model=RentalOut,
    summary="Change plan for the same period: prorated on the next invoice, the server resized to the new limits",
    responses={**_ERRORS, 422: {"description": "The plan is not sold for this game and period"}},
)
async def change_plan(
    order_id: OrderId, body: PlanIn, principal: CurrentPrincipal, actions: RentalActionsDep, _: StripeCallDep
) -> RentalOut:
    try:
        return RentalOut.of(await actions.change_plan(principal, order_id, body.plan_id))
    except _HANDLED as exc:
        raise _failed(exc) from exc


@router.post(
    "/billing-portal-sessions",
    response_model=PortalOut,
    status_code=201,
    summary="A Stripe customer-portal session for a rental (change the card, cancel): its URL",
    responses=_ERRORS,
)
async def billing_portal_session(
    body: PortalIn, principal: CurrentPrincipal, actions: RentalActionsDep, _: StripeCallDep
) -> PortalOut:
    try:
        url = await actions.portal(
            principal, body.order_id, return_url=str(body.return_url) if body.return_url else None
        )
    except _HANDLED as exc:
        raise _failed(exc) from exc
    return PortalOut(url=url)
