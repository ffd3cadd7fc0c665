"""Reads an order from order-service over HTTP, on behalf of the customer (their bearer token is
forwarded, so order-service's own ownership rule applies).

Every checkout reads its order, so the request goes through the kit's HTTP/1.1 client
(``spawnpoint_kit.http11``, decision 51) on kept-alive connections, not httpx's."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from spawnpoint_contracts import FeatureLimits, Limits, OrderSnapshot
from spawnpoint_kit.http import CORRELATION_HEADER, current_correlation_id
from spawnpoint_kit.http11 import Http11Pool, HttpUnreachable


@dataclass(frozen=True)
class OrderView:
    snapshot: OrderSnapshot
    status: str
    correlation_id: str


class OrderNotFound(Exception):
    pass


class OrderServiceUnavailable(Exception):
    pass


class PlanNotOffered(Exception):
    """The catalog does not sell that plan for the order's game and period."""


@dataclass(frozen=True)
class PlanQuote:
    plan_id: str
    plan_name: str
    amount: int
    currency: str
    limits: Limits
    feature_limits: FeatureLimits


class OrderClient:
    def __init__(self, base_url: str, *, timeout: float = 5.0, max_idle: int = 16) -> None:
        self._http = Http11Pool(
            base_url,
            headers={"Accept": "application/json"},
            timeout=timeout,
            connect_timeout=timeout,
            max_idle=max_idle,
        )

    async def get_order(self, order_id: uuid.UUID, *, bearer_token: str) -> OrderView:
        try:
            response = await self._http.request(
                "GET",
                f"/orders/{order_id}",
                extra_headers={"Authorization": f"Bearer {bearer_token}", CORRELATION_HEADER: current_correlation_id()},
            )
        except HttpUnreachable as exc:
            raise OrderServiceUnavailable(str(exc)) from exc
        if response.status_code == 404:
            raise OrderNotFound(str(order_id))
        if response.status_code != 200:
            raise OrderServiceUnavailable(f"order-service answered {response.status_code}")
        data = response.json()
        snapshot = OrderSnapshot.model_validate({**data, "order_id": data["id"]})
        return OrderView(snapshot=snapshot, status=str(data["status"]), correlation_id=str(data["correlation_id"]))

    async def quote(self, *, game_id: str, plan_id: str, period: str) -> PlanQuote:
        """The catalog's price and server build for a plan and period (``GET /catalog/games/.../plans/...``)."""
        try:
            response = await self._http.request(
                "GET",
                f"/catalog/games/{game_id}/plans/{plan_id}",
                params={"period": period},
                extra_headers={CORRELATION_HEADER: current_correlation_id()},
            )
        except HttpUnreachable as exc:
            raise OrderServiceUnavailable(str(exc)) from exc
        if response.status_code in (404, 422):
            raise PlanNotOffered(f"{plan_id} ({period}) is not sold for {game_id}")
        if response.status_code != 200:
            raise OrderServiceUnavailable(f"order-service answered {response.status_code}")
        data = response.json()
        return PlanQuote(
            plan_id=str(data["plan_id"]),
            plan_name=str(data.get("plan_name") or data["plan_id"]),
            amount=int(data["price"]["amount"]),
            currency=str(data["price"]["currency"]),
            limits=Limits.model_validate(data["limits"]),
            feature_limits=FeatureLimits.model_validate(data["feature_limits"]),
        )

    async def aclose(self) -> None:
        await self._http.aclose()
