"""Client of the panel's Application API (Pterodactyl, or its fork Pelican), over HTTP/1.1 (``spawnpoint_kit.http11``).

Every call sends ``Accept: application/json`` (without it the panel answers validation and auth errors
with 302 redirects) and JSON bodies, and first passes the process-wide ``RateGate`` (the panel's rate
limit is never exceeded; a 429's ``Retry-After`` pauses every call). Errors are raised as ``PanelError``
carrying the HTTP status, the panel's error ``code`` (exception class name) and the
``meta.source_field``/``meta.rule`` pairs, so callers classify on status and code and never on message
text. A timeout or connection failure is a ``PanelUnreachable``: the outcome of the request is unknown.

Latency is recorded per route template (``/servers/external/{id}``, never the id itself).

One client per process, with at most ``max_connections`` requests in flight (``PANEL_MAX_CONNECTIONS``) on
as many kept-alive connections; the rest wait their turn here, before the rate gate. The panel serves a few
requests at a time anyway (its PHP workers), and its rate limit allows a few per second.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
import time
from typing import Any
from urllib.parse import quote

from prometheus_client import Histogram

from spawnpoint_kit.http11 import Http11Pool, HttpResponse, HttpUnreachable

from ..domain.drift import ServerPage
from ..domain.panel import Egg, EggVariable, Flavor, PanelError, PanelFieldError, PanelServer, PanelUnreachable
from .rate_gate import RateGate

__all__ = ["Egg", "Flavor", "PanelClient", "PanelError", "PanelServer", "PanelUnreachable"]

LATENCY = Histogram(
    "provisioner_panel_request_seconds",
    "Panel API latency by route template and outcome (status code, or 'unreachable')",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)

_SAFE_EXTERNAL = re.compile(r"^[A-Za-z0-9._-]{1,150}$")


def user_external_id(user_id: str) -> str:
    """The panel user's external id for our user: the id itself when URL-safe, else a stable hash."""
    return user_id if _SAFE_EXTERNAL.fullmatch(user_id) else "sp-" + hashlib.sha256(user_id.encode()).hexdigest()[:40]


def panel_username(user_id: str, *, salt: str = "") -> str:
    """A username the panel accepts (lower-case, starts and ends alphanumeric, 3+ characters)."""
    return "sp" + hashlib.sha256((user_id + salt).encode()).hexdigest()[:14]


class PanelClient:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        flavor: Flavor,
        timeout: float,
        gate: RateGate,
        max_connections: int = 8,
    ) -> None:
        self.flavor = flavor
        self.gate = gate
        self._slots = asyncio.Semaphore(max_connections)
        self._http = Http11Pool(
            base_url.rstrip("/") + "/api/application",
            timeout=timeout,
            connect_timeout=5.0,
            max_idle=max_connections,
            headers={
                "Authorization": f"Bearer {api_key}",
                "Accept": "application/json",
                "Content-Type": "application/json",
                "User-Agent": "spawnpoint-provisioner/1.0",
            },
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _request(
        self,
        method: str,
        path: str,
        *,
        route: str,
        params: dict[str, Any] | None = None,
        json: dict[str, Any] | None = None,
    ) -> HttpResponse:
        # A free connection first, then the gate's token: the request goes out as soon as it has one, so the
        # gate's pace is the pace the panel sees.
        async with self._slots:
            await self.gate.wait()
            started = time.perf_counter()
            try:
                response = await self._http.request(
                    method, path, params=params, json_body=json, span_attributes={"spawnpoint.panel.route": route}
                )
            except HttpUnreachable as exc:
                LATENCY.labels(method, route, "unreachable").observe(time.perf_counter() - started)
                raise PanelUnreachable(f"{method} {route}: {exc}") from exc
        LATENCY.labels(method, route, str(response.status_code)).observe(time.perf_counter() - started)
        if response.status_code >= 400:
            error = _error_of(response)
            if error.status == 429:
                self.gate.pause(error.retry_after if error.retry_after is not None else 1.0)
            raise error
        return response

    # servers ------------------------------------------------------------------------------------

    async def server_by_external_id(self, external_id: str) -> PanelServer | None:
        try:
            response = await self._request(
                "GET", f"/servers/external/{quote(external_id, safe='')}", route="/servers/external/{external_id}"
            )
        except PanelError as exc:
            if exc.status == 404 and exc.code == "NotFoundHttpException":
                return None
            raise
        return PanelServer.of(response.json()["attributes"])

    async def server(self, server_id: int) -> PanelServer | None:
        try:
            response = await self._request("GET", f"/servers/{server_id}", route="/servers/{id}")
        except PanelError as exc:
            if exc.status == 404 and exc.code == "NotFoundHttpException":
                return None
            raise
        return PanelServer.of(response.json()["attributes"])

    async def list_servers(self, *, page: int, per_page: int = 100) -> ServerPage:
        """``GET /servers?page=N&per_page=M``: one page of every server (null external ids included), in id
        order; ``total_pages`` from ``meta.pagination`` (Laravel's paginator: a page past the end is empty)."""
        response = await self._request("GET", "/servers", route="/servers", params={"page": page, "per_page": per_page})
        body = response.json()
        pagination = (body.get("meta") or {}).get("pagination") or {}
        total_pages = pagination.get("total_pages")
        return ServerPage(
            servers=[PanelServer.of(item["attributes"]) for item in body.get("data", [])],
            page=int(pagination.get("current_page") or page),
            total_pages=int(total_pages) if total_pages is not None else None,
        )

    async def create_server(self, body: dict[str, Any]) -> PanelServer:
        response = await self._request("POST", "/servers", route="/servers", json=body)
        return PanelServer.of(response.json()["attributes"])

    async def suspend(self, server_id: int) -> None:
        """``POST /servers/{id}/suspend``: 204, a no-op when it is suspended already."""
        await self._request("POST", f"/servers/{server_id}/suspend", route="/servers/{id}/suspend")

    async def unsuspend(self, server_id: int) -> None:
        """``POST /servers/{id}/unsuspend``: 204, a no-op when it is not suspended (it sets status null)."""
        await self._request("POST", f"/servers/{server_id}/unsuspend", route="/servers/{id}/unsuspend")

    async def update_build(self, server_id: int, body: dict[str, Any]) -> PanelServer:
        """``PATCH /servers/{id}/build`` with the complete build (``domain.server_state.build_body``)."""
        response = await self._request("PATCH", f"/servers/{server_id}/build", route="/servers/{id}/build", json=body)
        return PanelServer.of(response.json()["attributes"])

    async def delete_server(self, server_id: int, *, force: bool = False) -> bool:
        """``DELETE /servers/{id}`` (``/force`` only when an operator chose it): 204. A 404 means it is gone
        already (a retried delete that succeeded before): False, which callers count as success."""
        path, route = (
            (f"/servers/{server_id}/force", "/servers/{id}/force")
            if force
            else (f"/servers/{server_id}", "/servers/{id}")
        )
        try:
            await self._request("DELETE", path, route=route)
        except PanelError as exc:
            if exc.status == 404 and exc.code == "NotFoundHttpException":
                return False
            raise
        return True

    # users --------------------------------------------------------------------------------------

    async def user_by_external_id(self, external_id: str) -> int | None:
        try:
            response = await self._request(
                "GET", f"/users/external/{quote(external_id, safe='')}", route="/users/external/{external_id}"
            )
        except PanelError as exc:
            if exc.status == 404:
                return None
            raise
        return int(response.json()["attributes"]["id"])

    async def user_by_email(self, email: str) -> int | None:
        """``filter[email]`` is a partial match: compare exactly (case-insensitively, as the panel does).

        The customer's e-mail comes from the shop's login, which must have verified it (an account is
        adopted by e-mail only because of that). A panel administrator's account is never adopted: a
        customer who signed up with an admin's address would otherwise own servers as that admin. Such an
        order fails with ``invalid_request`` naming the conflict, for an operator to resolve and replay."""
        response = await self._request(
            "GET", "/users", route="/users", params={"filter[email]": email, "per_page": 100}
        )
        for item in response.json().get("data", []):
            attributes = item.get("attributes", {})
            if str(attributes.get("email", "")).lower() == email.lower():
                if attributes.get("root_admin"):
                    raise PanelError(
                        422,
                        "AccountConflict",
                        "the customer's e-mail belongs to a panel administrator; it is never adopted",
                        [PanelFieldError("email", "administrator", "belongs to a panel administrator")],
                    )
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
        response = await self._request("POST", "/users", route="/users", json=body)
        return int(response.json()["attributes"]["id"])

    async def ensure_user(self, *, user_id: str, email: str) -> int:
        """The panel account of our user: found by external id, else created. An account that already
        exists (an e-mail taken by an account made by hand, or a concurrent order of the same customer)
        is found and used instead of failing the order."""
        external_id = user_external_id(user_id)
        found = await self.user_by_external_id(external_id)
        if found is not None:
            return found
        username = panel_username(user_id)
        for _ in range(3):
            try:
                return await self.create_user(external_id=external_id, email=email, username=username)
            except PanelError as exc:
                if exc.status != 422:
                    raise
                if exc.has("external_id", "unique") or exc.has("email", "unique"):
                    by_external = await self.user_by_external_id(external_id)
                    if by_external is not None:
                        return by_external
                    by_email = await self.user_by_email(email)
                    if by_email is not None:
                        return by_email
                if exc.has("username", "unique"):
                    # Someone else holds this username: derive another one.
                    username = panel_username(user_id, salt=secrets.token_hex(4))
                    continue
                raise
        raise PanelError(422, "ValidationException", "could not find or create the panel user")

    # eggs ---------------------------------------------------------------------------------------

    async def egg(self, *, nest_id: int | None, egg_id: int) -> Egg:
        if self.flavor == "pelican" or nest_id is None:
            path, route = f"/eggs/{egg_id}", "/eggs/{id}"
        else:
            path, route = f"/nests/{nest_id}/eggs/{egg_id}", "/nests/{nest}/eggs/{id}"
        response = await self._request("GET", path, route=route, params={"include": "variables"})
        return egg_of(response.json())


def egg_of(document: dict[str, Any]) -> Egg:
    """An egg item with ``?include=variables`` (Pterodactyl pipe-string rules, or Pelican arrays)."""
    attributes = document["attributes"]
    variables = attributes.get("relationships", {}).get("variables", {}).get("data", [])
    out = []
    for item in variables:
        v = item["attributes"]
        rules = v.get("rules") or ""
        tokens = tuple(str(r) for r in rules) if isinstance(rules, list) else tuple(str(rules).split("|"))
        out.append(
            EggVariable(
                env_variable=str(v["env_variable"]),
                default_value="" if v.get("default_value") is None else str(v["default_value"]),
                rules=tuple(t for t in tokens if t),
                name=str(v.get("name") or ""),
            )
        )
    return Egg(id=int(attributes["id"]), variables=tuple(out))


def _error_of(response: HttpResponse) -> PanelError:
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
