"""Reads an order from order-service over HTTP, on behalf of the customer (their bearer token is
forwarded, so order-service's own ownership rule applies)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import httpx

from spawnpoint_contracts import OrderSnapshot
from spawnpoint_kit.http import CORRELATION_HEADER, current_correlation_id


@dataclass(frozen=True)
class OrderView:
    snapshot: OrderSnapshot
    status: str
    correlation_id: str


class OrderNotFound(Exception):
    pass


class OrderServiceUnavailable(Exception):
    pass


class OrderClient:
    def __init__(self, base_url: str, *, timeout: float = 5.0) -> None:
        self._http = httpx.AsyncClient(base_url=base_url, timeout=timeout)

    async def get_order(self, order_id: uuid.UUID, *, bearer_token: str) -> OrderView:
        try:
            response = await self._http.get(
                f"/orders/{order_id}",
                headers={"Authorization": f"Bearer {bearer_token}", CORRELATION_HEADER: current_correlation_id()},
            )
        except httpx.HTTPError as exc:
            raise OrderServiceUnavailable(str(exc)) from exc
        if response.status_code == 404:
            raise OrderNotFound(str(order_id))
        if response.status_code != 200:
            raise OrderServiceUnavailable(f"order-service answered {response.status_code}")
        data = response.json()
        snapshot = OrderSnapshot.model_validate({**data, "order_id": data["id"]})
        return OrderView(snapshot=snapshot, status=str(data["status"]), correlation_id=str(data["correlation_id"]))

    async def aclose(self) -> None:
        await self._http.aclose()
