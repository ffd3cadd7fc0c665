"""The request pipeline: the panel's middleware stack, in the order the real panel runs it.

Order (reference §10 A.2): route match (404/405, before any middleware), key check (401),
malformed JSON (400), rate limit (429, per key owner), route-model binding (404), admin or
client-key check (403), ACL check (403 "This action is unauthorized."), then the controller
(validation 422, service errors). Input is normalised as Laravel's global middleware does
(strings trimmed, ``""`` turned into null), the body is read only for a JSON content type,
and errors are JSON only when the first ``Accept`` type is JSON; otherwise validation and
display errors redirect back, authentication failures redirect to the login page, and the
rest are HTML pages.

Proxy faults (``/_fake/faults``) act before all of this, as a proxy in front of the panel.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.types import Receive, Scope, Send

from panel_fake import errors
from panel_fake.auth import Caller, authenticate
from panel_fake.faults import ProxyFault
from panel_fake.router import Route
from panel_fake.runtime import PanelRuntime
from panel_fake.store import Allocation, Egg, Location, Nest, Node, Server, User
from panel_fake.transformers import View
from panel_fake.validation import UnknownRuleError

logger = logging.getLogger("panel_fake")

# Laravel's Str::trim: whitespace plus BOM and zero-width space.
_TRIM_RE = re.compile(r"^[\s\ufeff\u200b]+|[\s\ufeff\u200b]+$")
_NEVER_TRIM = frozenset({"password", "password_confirmation"})
_JSON_MAX_DEPTH = 512


class DropConnection(Exception):
    """Raised after the response started, so the server closes the connection mid-response."""


# --------------------------------------------------------------------------- input parsing


def parse_php_query(raw: str) -> dict[str, Any]:
    """PHP's ``parse_str``: ``a[b]=1`` nests, ``a[]=1`` appends, later keys win."""
    result: dict[str, Any] = {}
    for key, value in parse_qsl(raw, keep_blank_values=True):
        if "[" in key and key.endswith("]"):
            base, rest = key.split("[", 1)
            path = [base, *rest[:-1].split("][")]
        else:
            path = [key]
        path[0] = path[0].replace(".", "_").replace(" ", "_")
        if path[0] == "":
            continue
        container: Any = result
        for index, part in enumerate(path):
            last = index == len(path) - 1
            if isinstance(container, list):
                if part == "" or not last:
                    if last:
                        container.append(value)
                        break
                    nested: dict[str, Any] = {}
                    container.append(nested)
                    container = nested
                    continue
                container.append(value)
                break
            if last:
                if part == "":
                    continue
                container[part] = value
                break
            nxt = path[index + 1]
            existing = container.get(part)
            if nxt == "":
                if not isinstance(existing, list):
                    existing = []
                    container[part] = existing
            elif not isinstance(existing, dict):
                existing = {}
                container[part] = existing
            container = existing
    return result


def clean_input(value: Any, key: str = "") -> Any:
    """``TrimStrings`` then ``ConvertEmptyStringsToNull``, recursively."""
    if isinstance(value, str):
        trimmed = value if key in _NEVER_TRIM else _TRIM_RE.sub("", value)
        return None if trimmed == "" else trimmed
    if isinstance(value, dict):
        return {k: clean_input(v, f"{key}.{k}" if key else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [clean_input(v, f"{key}.{i}" if key else str(i)) for i, v in enumerate(value)]
    return value


def is_json_content_type(content_type: str | None) -> bool:
    """Laravel's ``Request::isJson``."""
    return content_type is not None and ("/json" in content_type or "+json" in content_type)


def wants_json(accept: str | None, requested_with: str | None) -> bool:
    """Laravel's ``expectsJson``: first Accept type (by quality) contains json, or XHR accepting anything."""
    types: list[tuple[float, int, str]] = []
    for index, part in enumerate((accept or "").split(",")):
        pieces = [piece.strip() for piece in part.split(";")]
        if not pieces[0]:
            continue
        quality = 1.0
        for param in pieces[1:]:
            if param.startswith("q="):
                try:
                    quality = float(param[2:])
                except ValueError:
                    quality = 0.0
        types.append((-quality, index, pieces[0].lower()))
    types.sort()
    first = types[0][2] if types else ""
    if requested_with == "XMLHttpRequest" and first in ("", "*/*", "*"):
        return True
    return "/json" in first or "+json" in first


def _depth(value: Any) -> int:
    stack: list[tuple[Any, int]] = [(value, 1)]
    deepest = 0
    while stack:
        current, depth = stack.pop()
        if isinstance(current, dict | list):
            deepest = max(deepest, depth)
            children = current.values() if isinstance(current, dict) else current
            stack.extend((child, depth + 1) for child in children)
    return deepest


def _reject_constant(name: str) -> Any:
    raise ValueError(name)


def parse_json_body(raw: bytes) -> Any:
    """``json_decode`` with PHP's error messages (``IsValidJson`` middleware)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise errors.bad_json("Malformed UTF-8 characters, possibly incorrectly encoded") from None
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise errors.bad_json("Maximum stack depth exceeded") from None
    except json.JSONDecodeError as exc:
        if exc.msg.startswith("Invalid control character"):
            raise errors.bad_json("Control character error, possibly incorrectly encoded") from None
        raise errors.bad_json("Syntax error") from None
    except ValueError:
        raise errors.bad_json("Syntax error") from None
    if _depth(value) > _JSON_MAX_DEPTH:
        raise errors.bad_json("Maximum stack depth exceeded")
    return value


def body_as_input(value: Any) -> dict[str, Any]:
    """``(array) json_decode(...)``: lists keep their indexes, scalars become ``[0 => value]``."""
    if isinstance(value, dict):
        return value
    if isinstance(value, list):
        return {str(index): item for index, item in enumerate(value)}
    if value is None:
        return {}
    return {"0": value}


# --------------------------------------------------------------------------- context


@dataclass
class ApiContext:
    """One API request as a controller sees it."""

    runtime: PanelRuntime
    request: Request
    method: str
    path: str
    raw_query: str
    query: dict[str, Any]
    raw_body: bytes
    json_content: bool
    base_url: str
    route: Route | None = None
    params: dict[str, str] = field(default_factory=dict)
    caller: Caller | None = None
    input: dict[str, Any] = field(default_factory=dict)
    rate_headers: dict[str, str] = field(default_factory=dict)
    external_id: str | None = None
    user_external_id: str | None = None
    server: Server | None = None
    user: User | None = None
    node: Node | None = None
    location: Location | None = None
    nest: Nest | None = None
    egg: Egg | None = None
    allocation: Allocation | None = None

    @property
    def view(self) -> View:
        return View(state=self.runtime.state, flavor=self.runtime.flavor, caller=self.caller, base_url=self.base_url)

    @property
    def pelican(self) -> bool:
        return self.runtime.flavor == "pelican"

    def includes(self) -> list[str]:
        """Fractal's ``parseIncludes``: a comma list or an array; nested names count by their root."""
        raw = self.query.get("include")
        names: list[str] = []
        values: list[Any] = raw if isinstance(raw, list) else list(raw.values()) if isinstance(raw, dict) else [raw]
        for value in values:
            if not isinstance(value, str):
                continue
            for part in value.split(","):
                root = part.strip().split(".", 1)[0]
                if root and root not in names:
                    names.append(root)
        return names

    def json(self, payload: Any, status: int = 200) -> Response:
        return json_response(payload, status)

    @staticmethod
    def no_content() -> Response:
        return Response(status_code=204)


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=True)
    return Response(content=body, status_code=status, media_type="application/json", headers=headers)


# --------------------------------------------------------------------------- rendering


def _html_page(status: int, headers: dict[str, str]) -> Response:
    phrase = errors.reason_phrase(status)
    html = (
        '<!DOCTYPE html>\n<html lang="en">\n<head><meta charset="utf-8"><title>'
        f"{phrase}</title></head>\n<body><div>{status} | {phrase}</div></body>\n</html>\n"
    )
    return HTMLResponse(html, status_code=status, headers=headers)


def render_error(err: errors.PanelError, *, json_wanted: bool, base_url: str, referer: str | None) -> Response:
    """The panel's ``Handler::render`` for one exception."""
    if json_wanted:
        return json_response(err.body(), err.status, err.headers)
    if err.render_as in ("validation", "display"):
        return RedirectResponse(referer or f"{base_url}/", status_code=302, headers=err.headers)
    if err.render_as == "auth":
        return RedirectResponse(f"{base_url}/auth/login", status_code=302, headers=err.headers)
    return _html_page(err.status, err.headers)


def _proxy_fault_response(fault: ProxyFault, json_wanted: bool, base_url: str) -> Response:
    status = fault.status or 502
    headers: dict[str, str] = {}
    if status == 429 or fault.retry_after is not None:
        headers["Retry-After"] = str(fault.retry_after if fault.retry_after is not None else 60)
    if not fault.envelope:
        return bare_proxy_page(status, headers)
    if status == 429:
        code, detail = fault.code or "ThrottleRequestsException", fault.detail or "Too Many Attempts."
    elif status == 500:
        code, detail = fault.code or "HttpException", fault.detail or errors.GENERIC_DETAIL
    else:
        code, detail = fault.code or "HttpException", fault.detail or errors.reason_phrase(status)
    err = errors.PanelError(status, code, detail, headers=headers)
    return render_error(err, json_wanted=json_wanted, base_url=base_url, referer=None)


def bare_proxy_page(status: int, headers: dict[str, str] | None = None) -> Response:
    """What nginx in front of the panel answers when the upstream fails or times out."""
    phrase = errors.reason_phrase(status)
    html = (
        f"<html>\r\n<head><title>{status} {phrase}</title></head>\r\n<body>\r\n"
        f"<center><h1>{status} {phrase}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    )
    return HTMLResponse(html, status_code=status, headers=headers or {})


# --------------------------------------------------------------------------- bindings


def _id(value: str) -> int | None:
    return int(value) if value.isascii() and value.isdigit() else None


def _client_server(ctx: ApiContext, value: str) -> Server | None:
    """Client API binding: Pterodactyl looks at the short id when the value has 8 characters,
    else at the uuid; Pelican accepts either."""
    state = ctx.runtime.state
    if ctx.pelican:
        return state.find_server_by_identifier(value) or state.find_server_by_uuid(value)
    if len(value) == 8:
        return state.find_server_by_identifier(value)
    return state.find_server_by_uuid(value)


def bind_parameters(ctx: ApiContext) -> None:
    """Route-model binding: every ``{model}`` in the path must exist (404 otherwise)."""
    state = ctx.runtime.state
    route = ctx.route
    assert route is not None
    for name, value in ctx.params.items():
        if name == "server" and route.api == "client":
            found = _client_server(ctx, value)
            if found is None:
                raise errors.model_not_found()
            ctx.server = found
            ctx.external_id = found.external_id
        elif name == "server":
            server_id = _id(value)
            server = state.servers.get(server_id) if server_id is not None else None
            if server is None:
                raise errors.model_not_found()
            ctx.server = server
            ctx.external_id = server.external_id
        elif name == "user":
            user_id = _id(value)
            user = state.users.get(user_id) if user_id is not None else None
            if user is None:
                raise errors.model_not_found()
            ctx.user = user
            ctx.user_external_id = user.external_id
        elif name == "node":
            node_id = _id(value)
            node = state.nodes.get(node_id) if node_id is not None else None
            if node is None:
                raise errors.model_not_found()
            ctx.node = node
        elif name == "location":
            location_id = _id(value)
            location = state.locations.get(location_id) if location_id is not None else None
            if location is None:
                raise errors.model_not_found()
            ctx.location = location
        elif name == "nest":
            nest_id = _id(value)
            nest = state.nests.get(nest_id) if nest_id is not None else None
            if nest is None:
                raise errors.model_not_found()
            ctx.nest = nest
        elif name == "egg":
            egg_id = _id(value)
            egg = state.eggs.get(egg_id) if egg_id is not None else None
            # Scoped bindings: an egg of another nest is not found.
            if egg is None or (ctx.nest is not None and egg.nest_id != ctx.nest.id):
                raise errors.model_not_found()
            ctx.egg = egg
        elif name == "allocation":
            allocation_id = _id(value)
            allocation = state.allocations.get(allocation_id) if allocation_id is not None else None
            if allocation is None or (ctx.node is not None and allocation.node_id != ctx.node.id):
                raise errors.model_not_found()
            ctx.allocation = allocation


# --------------------------------------------------------------------------- the pipeline


async def dispatch(ctx: ApiContext) -> Response:
    """Run the middleware stack and the controller for one request."""
    runtime = ctx.runtime
    route, params = runtime.router.match(ctx.method, ctx.path)
    ctx.route, ctx.params = route, params

    caller = authenticate(runtime.state, ctx.request.headers.get("authorization"))
    if caller is None:
        raise errors.unauthenticated()
    ctx.caller = caller

    body: Any = None
    if ctx.json_content and ctx.raw_body:
        body = parse_json_body(ctx.raw_body)
    merged = dict(ctx.query)
    merged.update(clean_input(body_as_input(body)) if body is not None else {})
    ctx.input = merged

    limit = runtime.rate_limit if route.api == "application" else runtime.client_rate_limit
    decision = runtime.limiter.hit(f"{route.api}:{caller.user.uuid}", limit)
    if not decision.allowed:
        raise errors.throttled(decision.headers)
    ctx.rate_headers = decision.headers

    bind_parameters(ctx)

    if route.api == "application":
        if not caller.user.root_admin:
            raise errors.access_denied(errors.NOT_ADMIN)
        if route.resource is not None and not caller.can(route.resource, route.permission):
            raise errors.access_denied(errors.UNAUTHORIZED_ACTION)
    elif not caller.is_client_key:
        raise errors.access_denied(errors.APPLICATION_KEY_ON_CLIENT)

    return await route.handler(ctx)


class PanelApi:
    """The ASGI endpoint for everything that is not ``/_fake``: proxy faults, then the panel."""

    def __init__(self, runtime: PanelRuntime) -> None:
        self.runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        self.runtime.in_flight += 1
        try:
            response = await self.handle(request)
        finally:
            self.runtime.in_flight -= 1
        if response is None:
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"4096")]})
            await send({"type": "http.response.body", "body": b"{", "more_body": True})
            raise DropConnection()
        await response(scope, receive, send)

    async def handle(self, request: Request) -> Response | None:
        runtime = self.runtime
        runtime.tick()
        started = time.monotonic()
        wall = datetime.now(UTC)
        generation = runtime.log.generation
        method = request.method.upper()
        path = request.url.path
        raw_query = request.url.query
        base_url = str(request.base_url).rstrip("/")
        json_wanted = wants_json(request.headers.get("accept"), request.headers.get("x-requested-with"))
        raw_body = await request.body()

        def record(status: int, ctx: ApiContext | None, fault: str | None) -> None:
            external_id = ctx.external_id if ctx is not None else None
            if external_id is None:
                external_id = _guess_external_id(path, raw_body, request.headers.get("content-type"))
            runtime.log.record(
                method=method,
                path=path,
                query=raw_query,
                status=status,
                started_wall=wall,
                duration_ms=(time.monotonic() - started) * 1000,
                external_id=external_id,
                user_external_id=ctx.user_external_id if ctx is not None else None,
                key=ctx.caller.key.identifier if ctx is not None and ctx.caller is not None else None,
                fault=fault,
                generation=generation,
            )

        if runtime.faults.down is not None:
            record(503 if runtime.faults.down == "503" else 0, None, f"down:{runtime.faults.down}")
            return bare_proxy_page(503) if runtime.faults.down == "503" else None

        fault = runtime.faults.take(method, path)
        if fault is not None:
            if fault.latency_seconds > 0:
                await asyncio.sleep(fault.latency_seconds)
            if fault.close:
                record(0, None, f"proxy:{fault.id}:close")
                return None
            if fault.status is not None:
                response = _proxy_fault_response(fault, json_wanted, base_url)
                record(response.status_code, None, f"proxy:{fault.id}")
                return response

        ctx = ApiContext(
            runtime=runtime,
            request=request,
            method=method,
            path=path,
            raw_query=raw_query,
            query=clean_input(parse_php_query(raw_query)),
            raw_body=raw_body,
            json_content=is_json_content_type(request.headers.get("content-type")),
            base_url=base_url,
        )
        try:
            response = await dispatch(ctx)
        except errors.PanelError as err:
            response = render_error(
                err, json_wanted=json_wanted, base_url=base_url, referer=request.headers.get("referer")
            )
        except UnknownRuleError:
            logger.exception("egg variable rules could not be evaluated")
            response = render_error(
                errors.generic("BadMethodCallException"), json_wanted=json_wanted, base_url=base_url, referer=None
            )
        except Exception as exc:
            logger.exception("unhandled error in panel-fake")
            response = render_error(
                errors.generic(type(exc).__name__), json_wanted=json_wanted, base_url=base_url, referer=None
            )
        for name, value in ctx.rate_headers.items():
            response.headers[name] = value
        record(response.status_code, ctx, None)
        return response


def _guess_external_id(path: str, raw_body: bytes, content_type: str | None) -> str | None:
    """For requests the panel never processed (faults, 404s): the external id they concern, if any."""
    marker = "/api/application/servers/external/"
    if path.startswith(marker):
        rest = path[len(marker) :]
        return rest or None
    if path.rstrip("/") == "/api/application/servers" and raw_body and is_json_content_type(content_type):
        try:
            body = json.loads(raw_body)
        except ValueError:
            return None
        if isinstance(body, dict) and isinstance(body.get("external_id"), str):
            value = str(body["external_id"]).strip()
            return value or None
    return None
