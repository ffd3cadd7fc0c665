"""Client of the panel's Application API (Pterodactyl, or its fork Pelican), over httpx.

Every call sends ``Accept: application/json`` (without it the panel answers validation and auth errors
with 302 redirects) and JSON bodies. Errors are raised as ``PanelError`` carrying the HTTP status, the
panel's error ``code`` (exception class name) and the ``meta.source_field``/``meta.rule`` pairs, so
callers classify on status and code and never on message text. A timeout or connection failure is a
``PanelUnreachable``: the outcome of the request is unknown.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any, Literal
from urllib.parse import quote

import httpx

from ..domain.panel import Egg, EggVariable, PanelError, PanelFieldError, PanelServer, PanelUnreachable

Flavor = Literal["pterodactyl", "pelican"]

__all__ = ["Egg", "Flavor", "PanelClient", "PanelError", "PanelServer", "PanelUnreachable"]


_SAFE_EXTERNAL = re.compile(r"^[A-Za-z0-9._-]{1,150}$")


def user_external_id(user_id: str) -> str:
    """The panel user's external id for our user: the id itself when URL-safe, else a stable hash."""
    return user_id if _SAFE_EXTERNAL.fullmatch(user_id) else "sp-" + hashlib.sha256(user_id.encode()).hexdigest()[:40]


def panel_username(user_id: str) -> str:
    """A username the panel accepts (lower-case, starts and ends alphanumeric, 3+ characters)."""
    return "sp" + hashlib.sha256(user_id.encode()).hexdigest()[:14]


class PanelClient:
    def __init__(self, base_url: str, api_key: str, *, flavor: Flavor, timeout: float) -> None:
        self.flavor = flavor
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/") + "/api/application",
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            headers={
                "Authorization": f"Bearer {api_key}",
                "Accept": "application/json",
                "Content-Type": "application/json",
                "User-Agent": "spawnpoint-provisioner/1.0",
            },
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = await self._http.request(method, path, **kwargs)
        except (httpx.TimeoutException, httpx.TransportError) as exc:
            raise PanelUnreachable(f"{method} {path}: {type(exc).__name__}") from exc
        if response.status_code >= 400:
            raise _error_of(response)
        return response

    # servers ------------------------------------------------------------------------------------

    async def server_by_external_id(self, external_id: str) -> PanelServer | None:
        try:
            response = await self._request("GET", f"/servers/external/{quote(external_id, safe='')}")
        except PanelError as exc:
            if exc.status == 404 and exc.code == "NotFoundHttpException":
                return None
            raise
        return PanelServer.of(response.json()["attributes"])

    async def server(self, server_id: int) -> PanelServer | None:
        try:
            response = await self._request("GET", f"/servers/{server_id}")
        except PanelError as exc:
            if exc.status == 404 and exc.code == "NotFoundHttpException":
                return None
            raise
        return PanelServer.of(response.json()["attributes"])

    async def create_server(self, body: dict[str, Any]) -> PanelServer:
        response = await self._request("POST", "/servers", json=body)
        return PanelServer.of(response.json()["attributes"])

    # users --------------------------------------------------------------------------------------

    async def user_by_external_id(self, external_id: str) -> int | None:
        try:
            response = await self._request("GET", f"/users/external/{quote(external_id, safe='')}")
        except PanelError as exc:
            if exc.status == 404:
                return None
            raise
        return int(response.json()["attributes"]["id"])

    async def user_by_email(self, email: str) -> int | None:
        """``filter[email]`` is a partial match: compare exactly."""
        response = await self._request("GET", "/users", params={"filter[email]": email, "per_page": 100})
        for item in response.json().get("data", []):
            attributes = item.get("attributes", {})
            if str(attributes.get("email", "")).lower() == email.lower():
                return int(attributes["id"])
        return None

    async def create_user(self, *, external_id: str, email: str, username: str) -> int:
        body: dict[str, Any] = {
            "external_id": external_id,
            "email": email,
            "username": username,
            "first_name": "Spawnpoint",
            "last_name": "Customer",
        }
        response = await self._request("POST", "/users", json=body)
        return int(response.json()["attributes"]["id"])

    # eggs ---------------------------------------------------------------------------------------

    async def egg(self, *, nest_id: int | None, egg_id: int) -> Egg:
        if self.flavor == "pelican" or nest_id is None:
            path = f"/eggs/{egg_id}"
        else:
            path = f"/nests/{nest_id}/eggs/{egg_id}"
        response = await self._request("GET", path, params={"include": "variables"})
        attributes = response.json()["attributes"]
        variables = attributes.get("relationships", {}).get("variables", {}).get("data", [])
        out = []
        for item in variables:
            v = item["attributes"]
            rules = v.get("rules", "")
            out.append(
                EggVariable(
                    env_variable=str(v["env_variable"]),
                    default_value="" if v.get("default_value") is None else str(v["default_value"]),
                    rules="|".join(rules) if isinstance(rules, list) else str(rules),
                )
            )
        return Egg(id=int(attributes["id"]), variables=tuple(out))


def _error_of(response: httpx.Response) -> PanelError:
    retry_after: float | None = None
    if "retry-after" in response.headers:
        try:
            retry_after = float(response.headers["retry-after"])
        except ValueError:
            retry_after = None
    try:
        body = response.json()
        items = body["errors"]
        first = items[0]
        return PanelError(
            status=response.status_code,
            code=first.get("code"),
            detail=str(first.get("detail", "")),
            errors=[
                PanelFieldError(
                    field=(i.get("meta") or {}).get("source_field"),
                    rule=(i.get("meta") or {}).get("rule"),
                    detail=str(i.get("detail", "")),
                )
                for i in items
            ],
            retry_after=retry_after,
        )
    except Exception:
        return PanelError(
            status=response.status_code,
            code=None,
            detail=response.text[:300],
            retry_after=retry_after,
            envelope=False,
        )
