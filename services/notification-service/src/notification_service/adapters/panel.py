"""The panel's application API, read only: where a customer connects to their server.

The connect address (``ip:port``, or the allocation's alias) is not in any event; the provisioner's
``ServerInstalled`` names the server, and the panel knows its default allocation
(``GET /api/application/servers/{id}?include=allocations``). Read once, when the "server ready" e-mail is
sent; a failure is transient (the e-mail waits and is tried again).
"""

from __future__ import annotations

from typing import Any

import httpx

from ..config import Settings


class PanelUnavailable(Exception):
    """The panel did not say where the server listens (an outage, a 5xx, an unexpected body)."""


class PanelDirectory:
    def __init__(self, settings: Settings) -> None:
        self._client = httpx.AsyncClient(
            base_url=settings.panel_url.rstrip("/"),
            headers={
                "Authorization": f"Bearer {settings.panel_api_key.get_secret_value()}",
                "Accept": "application/json",
            },
            timeout=10.0,
        )

    async def connect_address(self, server_id: int) -> str:
        try:
            response = await self._client.get(
                f"/api/application/servers/{server_id}", params={"include": "allocations"}
            )
        except httpx.HTTPError as exc:
            raise PanelUnavailable(f"panel unreachable: {type(exc).__name__}") from exc
        if response.status_code != 200:
            raise PanelUnavailable(f"panel answered {response.status_code} for server {server_id}")
        return address_of(response.json())

    async def aclose(self) -> None:
        await self._client.aclose()


def address_of(body: Any) -> str:
    """The server's default allocation as ``host:port`` (its alias when it has one)."""
    try:
        attributes = body["attributes"]
        default = attributes.get("allocation")
        allocations = [a["attributes"] for a in attributes["relationships"]["allocations"]["data"]]
    except (KeyError, TypeError) as exc:
        raise PanelUnavailable("the panel's server has no allocations in its answer") from exc
    chosen = next((a for a in allocations if a.get("id") == default), allocations[0] if allocations else None)
    if chosen is None:
        raise PanelUnavailable("the server has no allocation")
    host = chosen.get("alias") or chosen.get("ip")
    return f"{host}:{chosen.get('port')}"
