"""The panel as the provisioner understands it: servers, eggs, the errors the panel can answer, and what
the service layer asks of it.

Produced by the HTTP client in ``adapters/panel.py``; classified in ``failures.py``. ``Panel`` and
``Eggs`` are the service layer's view of that client and of its egg cache (``adapters/eggs.py``), so the
handlers can be tested with a small fake panel instead of an HTTP server.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Flavor = Literal["pterodactyl", "pelican"]


@dataclass(frozen=True)
class PanelFieldError:
    field: str | None
    rule: str | None
    detail: str


@dataclass
class PanelError(Exception):
    status: int
    code: str | None
    detail: str
    errors: list[PanelFieldError] = field(default_factory=list)
    retry_after: float | None = None
    envelope: bool = True
    """False when the body was not the panel's error envelope (a proxy's 502/504, for example)."""

    def __str__(self) -> str:
        return f"panel answered {self.status} {self.code or ''}: {self.detail}".strip()

    def has(self, source_field: str, rule: str | None = None) -> bool:
        return any(e.field == source_field and (rule is None or e.rule == rule) for e in self.errors)


class PanelUnreachable(Exception):
    """Timeout or connection error: the request may or may not have been applied."""


@dataclass(frozen=True)
class PanelServer:
    id: int
    uuid: str
    identifier: str
    external_id: str | None
    status: str | None
    user: int
    node: int | None
    limits: dict[str, Any] = field(default_factory=dict)
    feature_limits: dict[str, Any] = field(default_factory=dict)
    allocation: int | None = None
    suspended: bool | None = None

    @classmethod
    def of(cls, attributes: dict[str, Any]) -> PanelServer:
        limits = dict(attributes.get("limits") or {})
        return cls(
            id=int(attributes["id"]),
            uuid=str(attributes["uuid"]),
            identifier=str(attributes["identifier"]),
            external_id=attributes.get("external_id"),
            status=attributes.get("status"),
            user=int(attributes["user"]),
            node=attributes.get("node"),
            limits=limits,
            feature_limits=dict(attributes.get("feature_limits") or {}),
            allocation=attributes.get("allocation"),
            suspended=attributes.get("suspended"),
        )


@dataclass(frozen=True)
class EggVariable:
    """One egg variable. ``rules`` are Laravel rule tokens: Pterodactyl's pipe string split on ``|``
    (Laravel splits it the same naive way), Pelican's JSON array as it is."""

    env_variable: str
    default_value: str
    rules: tuple[str, ...]
    name: str = ""

    @property
    def display_name(self) -> str:
        return f"{self.name or self.env_variable} variable"


@dataclass(frozen=True)
class Egg:
    id: int
    variables: tuple[EggVariable, ...]


class Panel(Protocol):
    """The panel calls the service layer makes (``adapters/panel.PanelClient`` on the real panel)."""

    @property
    def flavor(self) -> Flavor: ...

    async def server_by_external_id(self, external_id: str) -> PanelServer | None: ...

    async def server(self, server_id: int) -> PanelServer | None: ...

    async def create_server(self, body: dict[str, Any]) -> PanelServer: ...

    async def suspend(self, server_id: int) -> None: ...

    async def unsuspend(self, server_id: int) -> None: ...

    async def update_build(self, server_id: int, body: dict[str, Any]) -> PanelServer: ...

    async def delete_server(self, server_id: int, *, force: bool = False) -> bool:
        """Delete the server; False when the panel had no such server (a retried delete that did succeed)."""
        ...

    async def ensure_user(self, *, user_id: str, email: str) -> int: ...

    async def egg(self, *, nest_id: int | None, egg_id: int) -> Egg: ...


class Eggs(Protocol):
    """Egg definitions by id (``adapters/eggs.EggCache``: cached, one panel read per egg and TTL)."""

    async def get(self, *, nest_id: int | None, egg_id: int) -> Egg: ...
