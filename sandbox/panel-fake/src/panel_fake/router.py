"""Route table and matching with Laravel's 404/405 behaviour.

Routing happens before any middleware, so an unknown path is a 404 "The route … could not be
found." and a known path with the wrong verb a 405, whatever the credentials. The fake keeps
its own table (rather than FastAPI's) to control exactly that order and those messages.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from starlette.responses import Response

from panel_fake import errors
from panel_fake.auth import READ
from panel_fake.config import FLAVORS, Flavor

if TYPE_CHECKING:
    from panel_fake.pipeline import ApiContext

Handler = Callable[["ApiContext"], Awaitable[Response]]
ApiKind = Literal["application", "client"]

# Laravel's Router::$verbs, the order a 405 lists the supported methods in.
VERBS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


@dataclass(frozen=True)
class Route:
    """One endpoint. ``resource``/``permission`` is the FormRequest's ACL requirement."""

    method: str
    path: str
    handler: Handler
    api: ApiKind = "application"
    resource: str | None = None
    permission: int = READ
    flavors: tuple[Flavor, ...] = FLAVORS
    segments: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "segments", tuple(part for part in self.path.strip("/").split("/") if part))

    def match(self, parts: list[str]) -> dict[str, str] | None:
        if len(parts) != len(self.segments):
            return None
        params: dict[str, str] = {}
        for pattern, value in zip(self.segments, parts, strict=True):
            if pattern.startswith("{") and pattern.endswith("}"):
                if value == "":
                    return None
                params[pattern[1:-1]] = value
            elif pattern != value:
                return None
        return params


class Router:
    """Matches a request to the first registered route, as Laravel's RouteCollection does."""

    def __init__(self, routes: list[Route], flavor: Flavor) -> None:
        self.routes = [route for route in routes if flavor in route.flavors]

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        parts = path.strip("/").split("/")
        if parts == [""]:
            parts = []
        found: dict[str, tuple[Route, dict[str, str]]] = {}
        for route in self.routes:
            params = route.match(parts)
            if params is not None and route.method not in found:
                found[route.method] = (route, params)
        wanted = "GET" if method.upper() == "HEAD" else method.upper()
        if wanted in found:
            return found[wanted]
        if not found:
            raise errors.route_not_found(path)
        allowed = [
            verb for verb in VERBS if verb != method.upper() and (verb in found or (verb == "HEAD" and "GET" in found))
        ]
        raise errors.method_not_allowed(method.upper(), path, allowed)
