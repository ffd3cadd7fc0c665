"""The catalog: which games and plans the shop sells, and how each maps onto the panel.

The operator edits a YAML file (see ``data/catalog.yaml``); this module is the validated, immutable form
of it. A game names its panel egg, image, startup command and default egg variables, plus the settings a
customer may choose; a plan names its limits, where servers may be placed, and its price. The price is
always computed here, on the server, from the catalog, never taken from a client.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from spawnpoint_contracts import Deploy, FeatureLimits, Limits, ServerSpec

CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")
"""No setting value may carry these (a NUL, a newline into a startup command, an escape sequence)."""

Identifier = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]
EnvName = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9_]{0,190}$")]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Price(_Frozen):
    amount: int = Field(ge=0, description="Minor units (cents).")
    currency: str = Field(pattern=r"^[a-z]{3}$")


class PanelTarget(_Frozen):
    nest: int | None = Field(default=None, description="Pterodactyl nest id (Pelican has no nests).")
    egg: int = Field(ge=1)
    docker_image: str = Field(min_length=1, max_length=191)
    startup: str = Field(min_length=1)


class SettingRule(_Frozen):
    """A setting the customer may choose; it becomes the egg variable of the same name."""

    label: str
    description: str = ""
    default: str | None = None
    choices: tuple[str, ...] | None = None
    pattern: str | None = None
    max_length: int = Field(default=191, ge=1, le=1000)
    secret: bool = Field(
        default=False,
        description="A secret (a server password): it travels to the panel, and every other copy shows it redacted.",
    )

    @model_validator(mode="after")
    def _pattern_compiles(self) -> SettingRule:
        if self.pattern is not None:
            re.compile(self.pattern)
        return self

    def problem_with(self, value: str) -> str | None:
        """Why ``value`` is not acceptable, or None."""
        if len(value) > self.max_length:
            return f"must be at most {self.max_length} characters"
        if self.choices is not None and value not in self.choices:
            return "must be one of: " + ", ".join(self.choices)
        if self.pattern is not None and not re.fullmatch(self.pattern, value):
            return f"does not match the allowed format {self.pattern}"
        return None


class Game(_Frozen):
    id: Identifier
    name: str
    description: str = ""
    panel: PanelTarget
    environment: dict[EnvName, str] = Field(default_factory=dict, description="Game defaults for egg variables.")
    settings: dict[EnvName, SettingRule] = Field(default_factory=dict)
    plans: tuple[Identifier, ...] = Field(min_length=1, description="Plans this game may be bought with.")


class Plan(_Frozen):
    id: Identifier
    name: str
    description: str = ""
    price: Price
    limits: Limits
    feature_limits: FeatureLimits
    deploy: Deploy


class Catalog(_Frozen):
    games: tuple[Game, ...]
    plans: tuple[Plan, ...]

    @model_validator(mode="after")
    def _references_resolve(self) -> Catalog:
        plan_ids = {p.id for p in self.plans}
        if len(plan_ids) != len(self.plans):
            raise ValueError("plan ids must be unique")
        if len({g.id for g in self.games}) != len(self.games):
            raise ValueError("game ids must be unique")
        for game in self.games:
            missing = set(game.plans) - plan_ids
            if missing:
                raise ValueError(f"game {game.id} names unknown plans: {sorted(missing)}")
        return self

    def game(self, game_id: str) -> Game | None:
        return next((g for g in self.games if g.id == game_id), None)

    def plan(self, plan_id: str) -> Plan | None:
        return next((p for p in self.plans if p.id == plan_id), None)


class SelectionError(Exception):
    """The customer's choice does not fit the catalog; ``field`` names what is wrong (for a 422)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


SERVER_NAME = re.compile(r"^[^\x00-\x1f\x7f]{1,64}$")


def resolve(
    catalog: Catalog, *, game_id: str, plan_id: str, server_name: str, settings: dict[str, str]
) -> tuple[Game, Plan, str, dict[str, str], ServerSpec]:
    """Check a customer's selection and build the server spec and the price source.

    Returns the game, the plan, the cleaned server name, the accepted settings and the spec. Raises
    ``SelectionError`` naming the first field that is wrong."""
    game = catalog.game(game_id)
    if game is None:
        raise SelectionError("game_id", f"unknown game '{game_id}'")
    plan = catalog.plan(plan_id)
    if plan is None:
        raise SelectionError("plan_id", f"unknown plan '{plan_id}'")
    if plan.id not in game.plans:
        raise SelectionError("plan_id", f"plan '{plan_id}' is not offered for {game.name}")
    name = server_name.strip()
    if not SERVER_NAME.fullmatch(name):
        raise SelectionError("server_name", "must be 1 to 64 printable characters")
    accepted: dict[str, str] = {}
    for key, value in settings.items():
        rule = game.settings.get(key)
        if rule is None:
            raise SelectionError(f"settings.{key}", f"is not a setting customers can choose for {game.name}")
        if CONTROL_CHARACTERS.search(value):
            # The panel would take them into a startup command, and PostgreSQL's JSONB refuses NUL outright.
            raise SelectionError(f"settings.{key}", "must not contain control characters")
        problem = rule.problem_with(value)
        if problem:
            raise SelectionError(f"settings.{key}", problem)
        accepted[key] = value
    environment = dict(game.environment)
    for key, rule in game.settings.items():
        if rule.default is not None:
            environment.setdefault(key, rule.default)
    environment.update(accepted)
    spec = ServerSpec(
        nest_id=game.panel.nest,
        egg_id=game.panel.egg,
        docker_image=game.panel.docker_image,
        startup=game.panel.startup,
        environment=environment,
        limits=plan.limits,
        feature_limits=plan.feature_limits,
        deploy=plan.deploy,
    )
    return game, plan, name, accepted, spec
