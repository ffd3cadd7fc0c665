"""order-service HTTP API: the catalog, a plan's quote for one period, placing an order, reading one's orders."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Header, HTTPException, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field, field_validator

from spawnpoint_contracts import Billing, FeatureLimits, Limits, ServerSpec, redact_order
from spawnpoint_kit.auth import CurrentPrincipal, Principal
from spawnpoint_kit.http import current_correlation_id

from ..adapters.tables import OrderRow
from ..deps import CatalogDep, SettingsCheckDep, UnitOfWorkDep
from ..domain.catalog import Period, SelectionError, choose_period, offered_plan
from ..domain.order import OrderStatus
from ..service_layer.orders import IdempotencyKeyReused, OrderNotFound, PlaceOrder, get_order, place_order

router = APIRouter()


class SettingOut(BaseModel):
    label: str
    description: str
    default: str | None
    choices: list[str] | None
    pattern: str | None
    max_length: int
    secret: bool = Field(description="A password-like setting: never shown back (answers carry it redacted).")


class GameOut(BaseModel):
    id: str
    name: str
    description: str
    plans: list[str]
    settings: dict[str, SettingOut]


class PriceOut(BaseModel):
    amount: int = Field(description="Minor units (cents)")
    currency: str


class PeriodOut(BaseModel):
    id: str = Field(description="What an order names as its `period`", examples=["monthly"])
    amount: int = Field(description="Minor units (cents), per period")
    currency: str
    kind: str = Field(description="`subscription` (renews every interval) or `fixed_term` (paid up front)")
    interval: str | None = Field(description="Subscriptions: day, week, month or year")
    interval_count: int = Field(description="Subscriptions: renewed every interval_count intervals")
    term_days: int | None = Field(description="Fixed terms: the days one payment buys")

    @classmethod
    def of(cls, period_id: str, period: Period) -> PeriodOut:
        billing = period.billing(period_id)
        return cls(
            id=period_id,
            amount=period.amount,
            currency=period.currency,
            kind=billing.kind,
            interval=billing.interval,
            interval_count=billing.interval_count,
            term_days=billing.term_days,
        )


class PlanOut(BaseModel):
    id: str
    name: str
    description: str
    price: PriceOut = Field(description="The default period's price")
    periods: list[PeriodOut] = Field(description="The periods the plan is sold by, in the catalog's order")
    default_period: str = Field(description="What an order without a `period` buys")
    memory_mb: int
    disk_mb: int
    cpu_percent: int
    databases: int
    backups: int


class CatalogOut(BaseModel):
    games: list[GameOut]
    plans: list[PlanOut]


class PlanQuoteOut(BaseModel):
    """A plan for one game, priced for one period, with the server it gives (for a change of plan)."""

    game_id: str
    plan_id: str
    plan_name: str
    period: str = Field(description="The period priced (the plan's default when none was asked for)")
    price: PriceOut
    billing: Billing
    limits: Limits
    feature_limits: FeatureLimits


class PlaceOrderIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    game_id: str = Field(min_length=1, max_length=64, examples=["minecraft-paper"])
    plan_id: str = Field(min_length=1, max_length=64, examples=["standard"])
    period: str | None = Field(
        default=None,
        min_length=1,
        max_length=40,
        examples=["monthly"],
        description="One of the plan's periods (GET /catalog); absent: the plan's default period.",
    )
    server_name: str = Field(min_length=1, max_length=200, examples=["Alex's world"])
    settings: dict[Annotated[str, Field(min_length=1, max_length=64)], Annotated[str, Field(max_length=1000)]] = Field(
        default_factory=dict,
        max_length=32,
        examples=[{"MINECRAFT_VERSION": "1.21.1"}],
        description="At most 32 settings, names up to 64 characters, values up to 1,000.",
    )
    locale: Literal["en", "de"] | None = Field(
        default=None,
        examples=["de"],
        description="The customer's language for e-mails (`en` or `de`); absent: `en`.",
    )
    time_zone: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        examples=["Europe/Berlin"],
        description="The customer's IANA time zone, for the dates in e-mails; absent: `UTC`.",
    )

    @field_validator("time_zone")
    @classmethod
    def _known_time_zone(cls, value: str | None) -> str | None:
        """Only a zone the IANA database knows, so every date the customer is told can be converted."""
        if value is None:
            return None
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA time zone {value!r} (use a name such as Europe/Berlin)") from exc
        return value


class OrderOut(BaseModel):
    id: uuid.UUID
    status: OrderStatus
    user_id: str
    email: str
    game_id: str
    game_name: str
    plan_id: str
    plan_name: str
    period: str = Field(description="The catalog's period bought (`once-30d` for orders from before periods)")
    billing: Billing = Field(description="What the period buys: a subscription or a fixed term")
    server_name: str
    settings: dict[str, str] = Field(
        description="What the customer chose; secret settings are redacted for anyone but the order's owner."
    )
    secret_settings: list[str] = Field(
        default_factory=list, description="Which settings are secrets (redacted for anyone but the owner)."
    )
    amount: int = Field(description="Price in minor units, computed from the catalog")
    currency: str
    locale: str = Field(default="en", description="The customer's language for e-mails")
    time_zone: str = Field(default="UTC", description="The customer's IANA time zone for dates in e-mails")
    customer_name: str | None = Field(
        default=None, description="The display name from the token's `name` claim when the order was placed"
    )
    server_spec: ServerSpec
    correlation_id: str = Field(description="Shared by every event of this order, for tracing")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: OrderRow, *, caller: Principal) -> OrderOut:
        """The order as ``caller`` may see it: its owner (and payment-service, which reads it with the owner's
        token on the way to the panel) sees every setting; anyone else, an operator, sees secrets redacted."""
        snap: dict[str, Any] = row.snapshot if caller.user_id == row.user_id else redact_order(row.snapshot)
        return cls(
            id=row.id,
            status=row.status,
            user_id=row.user_id,
            email=row.email,
            game_id=row.game_id,
            game_name=snap["game_name"],
            plan_id=row.plan_id,
            plan_name=snap["plan_name"],
            period=row.period_id,
            billing=row.billing(),
            server_name=row.server_name,
            settings=snap.get("settings", {}),
            secret_settings=snap.get("secret_settings", []),
            amount=row.amount,
            currency=row.currency,
            locale=row.locale,
            time_zone=row.time_zone,
            customer_name=row.customer_name,
            server_spec=ServerSpec.model_validate(snap["server_spec"]),
            correlation_id=row.correlation_id,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


@router.get("/catalog", response_model=CatalogOut, tags=["catalog"], summary="Games and plans for sale")
async def read_catalog(catalog: CatalogDep) -> CatalogOut:
    return CatalogOut(
        games=[
            GameOut(
                id=g.id,
                name=g.name,
                description=g.description,
                plans=list(g.plans),
                settings={
                    k: SettingOut(
                        label=r.label,
                        description=r.description,
                        default=r.default,
                        choices=list(r.choices) if r.choices else None,
                        pattern=r.pattern,
                        max_length=r.max_length,
                        secret=r.secret,
                    )
                    for k, r in g.settings.items()
                },
            )
            for g in catalog.games
        ],
        plans=[
            PlanOut(
                id=p.id,
                name=p.name,
                description=p.description,
                price=PriceOut(amount=p.price.amount, currency=p.price.currency),
                periods=[PeriodOut.of(period_id, period) for period_id, period in p.periods.items()],
                default_period=p.default_period,
                memory_mb=p.limits.memory,
                disk_mb=p.limits.disk,
                cpu_percent=p.limits.cpu,
                databases=p.feature_limits.databases,
                backups=p.feature_limits.backups,
            )
            for p in catalog.plans
        ],
    )


def _catalog_refusal(exc: SelectionError, where: str) -> HTTPException:
    return HTTPException(
        status_code=422,
        detail=[{"field": exc.field, "message": exc.message, "type": "catalog", "loc": [where, exc.field]}],
    )


@router.get(
    "/catalog/games/{game_id}/plans/{plan_id}",
    response_model=PlanQuoteOut,
    tags=["catalog"],
    summary="One plan for one game, priced for one period, with its server limits",
    responses={
        404: {"description": "No such game, no such plan, or the plan is not sold with this game"},
        422: {"description": "The plan is not sold by this period; `field` is `period`"},
    },
)
async def read_plan_quote(
    game_id: str,
    plan_id: str,
    catalog: CatalogDep,
    period: Annotated[
        str | None,
        Query(min_length=1, max_length=40, description="A period of the plan; absent: the plan's default period."),
    ] = None,
) -> PlanQuoteOut:
    try:
        game, plan = offered_plan(catalog, game_id=game_id, plan_id=plan_id)
    except SelectionError as exc:
        raise HTTPException(status_code=404, detail=exc.message) from exc
    try:
        period_id, chosen = choose_period(plan, period)
    except SelectionError as exc:
        raise _catalog_refusal(exc, "query") from exc
    return PlanQuoteOut(
        game_id=game.id,
        plan_id=plan.id,
        plan_name=plan.name,
        period=period_id,
        price=PriceOut(amount=chosen.amount, currency=chosen.currency),
        billing=chosen.billing(period_id),
        limits=plan.limits,
        feature_limits=plan.feature_limits,
    )


@router.post(
    "/orders",
    status_code=status.HTTP_201_CREATED,
    response_model=OrderOut,
    tags=["orders"],
    summary="Place an order (idempotent per Idempotency-Key)",
    responses={
        200: {"description": "The same Idempotency-Key and body were seen before: the original order"},
        409: {"description": "The Idempotency-Key was used with a different body"},
        422: {"description": "The selection does not fit the catalog; `field` names what is wrong"},
    },
)
async def create_order(
    body: PlaceOrderIn,
    response: Response,
    principal: CurrentPrincipal,
    uow: UnitOfWorkDep,
    catalog: CatalogDep,
    settings_check: SettingsCheckDep,
    idempotency_key: Annotated[
        str,
        Header(
            alias="Idempotency-Key",
            min_length=8,
            max_length=255,
            description="A unique value per order attempt (a UUID); a retry with the same key returns the same order.",
        ),
    ],
) -> OrderOut:
    try:
        placed = await place_order(
            uow,
            catalog,
            principal=principal,
            idempotency_key=idempotency_key,
            command=PlaceOrder(
                game_id=body.game_id,
                plan_id=body.plan_id,
                server_name=body.server_name,
                settings=body.settings,
                period=body.period,
                locale=body.locale,
                time_zone=body.time_zone,
            ),
            correlation_id=current_correlation_id(),
            settings_check=settings_check,
        )
    except SelectionError as exc:
        raise _catalog_refusal(exc, "body") from exc
    except IdempotencyKeyReused as exc:
        raise HTTPException(
            status_code=409,
            detail="this Idempotency-Key was already used for a different order; use a new key",
        ) from exc
    if placed.replayed:
        response.status_code = status.HTTP_200_OK
        response.headers["Idempotent-Replayed"] = "true"
    response.headers["Location"] = f"/orders/{placed.order.id}"
    return OrderOut.of(placed.order, caller=principal)


@router.get(
    "/orders/{order_id}",
    response_model=OrderOut,
    tags=["orders"],
    summary="One of the caller's orders",
    responses={404: {"description": "No such order for this caller"}},
)
async def read_order(order_id: uuid.UUID, principal: CurrentPrincipal, uow: UnitOfWorkDep) -> OrderOut:
    try:
        return OrderOut.of(await get_order(uow, order_id, principal=principal), caller=principal)
    except OrderNotFound as exc:
        raise HTTPException(status_code=404, detail="order not found") from exc
