"""Typed dependencies of payment-service's routes (``Annotated[..., Depends(...)]``, as the FastAPI template does).

``bootstrap.py`` builds one ``Services`` and puts it on the app; routes ask for what they use and never
reach into ``request.app.state`` themselves. Tests read it with ``services_of(app)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Request

from spawnpoint_kit.auth import CurrentPrincipal
from spawnpoint_kit.ratelimit import PerKeyLimit
from spawnpoint_kit.runtime import ServiceRuntime

from .service_layer.checkout import CheckoutService
from .service_layer.event_intake import EventIntake
from .service_layer.fulfilment import Fulfilment
from .service_layer.rental_actions import RentalActions
from .service_layer.unit_of_work import PaymentUnitOfWork


@dataclass(frozen=True)
class WebhookKeys:
    """What the webhook's signature check needs: the endpoint secrets (several while rotating) and the
    tolerance for the signature's timestamp."""

    secrets: tuple[str, ...]
    tolerance_seconds: int


@dataclass(frozen=True)
class Services:
    runtime: ServiceRuntime
    unit_of_work: Callable[[], PaymentUnitOfWork]
    fulfilment: Fulfilment
    checkout: CheckoutService
    intake: EventIntake
    webhook_keys: WebhookKeys
    stripe_calls: PerKeyLimit
    """Each customer's budget of calls that cost a live Stripe call (finding 10 of the reliability issue)."""
    rental_actions: RentalActions


def services_of(app: FastAPI) -> Services:
    services: Services = app.state.services
    return services


def get_services(request: Request) -> Services:
    return services_of(request.app)


# Async on purpose: FastAPI runs a synchronous dependency in a worker thread, and that hop costs more than
# the attribute lookup it would run (the webhook's latency is what a sale's burst waits on).


async def get_unit_of_work(request: Request) -> PaymentUnitOfWork:
    return get_services(request).unit_of_work()


async def get_fulfilment(request: Request) -> Fulfilment:
    return get_services(request).fulfilment


async def get_checkout(request: Request) -> CheckoutService:
    return get_services(request).checkout


async def get_rental_actions(request: Request) -> RentalActions:
    return get_services(request).rental_actions


async def spend_stripe_call(request: Request, principal: CurrentPrincipal) -> None:
    """A customer past their budget of Stripe calls gets a 429 at once; nothing reaches Stripe."""
    if not await get_services(request).stripe_calls.allow(principal.user_id):
        raise HTTPException(
            status_code=429,
            detail="too many checkout calls for this customer; try again in a few seconds",
            headers={"Retry-After": "5"},
        )


UnitOfWorkDep = Annotated[PaymentUnitOfWork, Depends(get_unit_of_work)]
StripeCallDep = Annotated[None, Depends(spend_stripe_call)]
FulfilmentDep = Annotated[Fulfilment, Depends(get_fulfilment)]
CheckoutDep = Annotated[CheckoutService, Depends(get_checkout)]
RentalActionsDep = Annotated[RentalActions, Depends(get_rental_actions)]
