"""The catalog: which games and plans the shop sells, and how each maps onto the panel.

The operator edits a YAML file (see ``data/catalog.yaml``); this module is the validated, immutable form
of it. A game names its panel egg, image, startup command and default egg variables, plus the settings a
customer may choose; a plan names its limits, where servers may be placed, and the periods it is sold by,
each with its price. A period is a subscription (renewed every ``interval_count`` intervals) or a
fixed term (``term_days``, paid up front). The price is always computed here, on the server, from the
catalog, never taken from a client.

A plan written before periods existed gives one ``price``; it is read as a single 30-day fixed term at that
price (period ``once-30d``), so an operator's old file still loads and means what it meant.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from spawnpoint_contracts import Billing, Deploy, FeatureLimits, Limits, ServerSpec

CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")
"""No setting value may carry these (a NUL, a newline into a startup command, an escape sequence)."""

Identifier = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]
EnvName = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9_]{0,190}$")]
PeriodId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$")]
"""A period's name (``monthly``, ``once-30d``): at most 40 characters, as ``Billing.period_id``."""

LEGACY_PERIOD = "once-30d"
"""The period a plan with only a ``price`` is sold by: a fixed term of ``Billing.FIXED_TERM_DEFAULT_DAYS``."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Price(_Frozen):
    amount: int = Field(ge=0, description="Minor units (cents).")
    currency: str = Field(pattern=r"^[a-z]{3}$")


class Period(_Frozen):
    """One way a plan is sold: its price, and either a subscription ``interval`` or a fixed ``term_days``."""

    amount: int = Field(ge=0, description="Minor units (cents), per period.")
    currency: str = Field(pattern=r"^[a-z]{3}$")
    interval: Literal["day", "week", "month", "year"] | None = Field(
        default=None, description="A subscription, renewed every interval_count intervals."
    )
    interval_count: int | None = Field(default=None, ge=1, le=36, description="Subscriptions only; 1 if omitted.")
    term_days: int | None = Field(default=None, ge=1, le=3660, description="A fixed term: days one payment buys.")

    @property
    def price(self) -> Price:
        return Price(amount=self.amount, currency=self.currency)

    @property
    def is_fixed_term(self) -> bool:
        return self.term_days is not None

    def problem(self) -> str | None:
        """Why this is neither a subscription nor a fixed term, or None."""
        if self.interval is not None and self.term_days is not None:
            return "is both a subscription (interval) and a fixed term (term_days); give one of them"
        if self.interval is None and self.term_days is None:
            return "needs an interval (a subscription) or term_days (a fixed term)"
        if self.term_days is not None and self.interval_count is not None:
            return "is a fixed term: interval_count belongs to subscriptions"
        return None

    def billing(self, period_id: str) -> Billing:
        """The contract's description of what one buys with this period."""
        if self.term_days is not None:
            return Billing(kind="fixed_term", term_days=self.term_days, period_id=period_id)
        return Billing(
            kind="subscription", interval=self.interval, interval_count=self.interval_count or 1, period_id=period_id
        )


def _is_fixed_term(raw: object) -> bool:
    """Whether a not yet validated period (a mapping from YAML, or a ``Period``) is a fixed term."""
    if isinstance(raw, Period):
        return raw.is_fixed_term
    return isinstance(raw, Mapping) and raw.get("term_days") is not None


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
    periods: dict[PeriodId, Period] = Field(
        min_length=1, description="The periods the plan is sold by, in the order a shop shows them."
    )
    default_period: PeriodId = Field(
        description="What an order without a period buys: the first fixed term if there is one, else the first "
        "period listed."
    )
    limits: Limits
    feature_limits: FeatureLimits
    deploy: Deploy

    @model_validator(mode="before")
    @classmethod
    def _periods_from_price(cls, data: Any) -> Any:
        """Read an old plan's single ``price`` as a 30-day fixed term, and pick the default period."""
        if not isinstance(data, Mapping):
            return data
        data = dict(data)
        plan = data.get("id", "?")
        price = data.pop("price", None)
        if price is not None:
            if data.get("periods"):
                raise ValueError(f"plan {plan}: give either price (a 30-day fixed term) or periods, not both")
            if isinstance(price, Price):
                price = price.model_dump()
            if not isinstance(price, Mapping):
                raise ValueError(f"plan {plan}: price must be a mapping with amount and currency")
            data["periods"] = {LEGACY_PERIOD: {**price, "term_days": Billing.FIXED_TERM_DEFAULT_DAYS}}
        periods = data.get("periods")
        if not periods:
            raise ValueError(f"plan {plan}: list the periods it is sold by (or, as before periods, one price)")
        if data.get("default_period") is None and isinstance(periods, Mapping):
            fixed = [pid for pid, raw in periods.items() if _is_fixed_term(raw)]
            data["default_period"] = fixed[0] if fixed else next(iter(periods))
        return data

    @model_validator(mode="after")
    def _periods_are_consistent(self) -> Plan:
        for period_id, period in self.periods.items():
            problem = period.problem()
            if problem:
                raise ValueError(f"plan {self.id}, period {period_id}: {problem}")
        if self.default_period not in self.periods:
            raise ValueError(
                f"plan {self.id}: default_period {self.default_period} is not one of its periods: "
                + ", ".join(self.periods)
            )
        return self

    @property
    def price(self) -> Price:
        """The default period's price (what an order without a period costs)."""
        return self.periods[self.default_period].price


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


def choose_period(plan: Plan, period_id: str | None) -> tuple[str, Period]:
    """The period the customer asked for (the plan's default when they named none), with its id; a period
    the plan is not sold by is a ``SelectionError`` on ``period``."""
    if period_id is None:
        return plan.default_period, plan.periods[plan.default_period]
    period = plan.periods.get(period_id)
    if period is None:
        raise SelectionError(
            "period", f"plan '{plan.id}' is not sold by the period '{period_id}'; one of: " + ", ".join(plan.periods)
        )
    return period_id, period


def offered_plan(catalog: Catalog, *, game_id: str, plan_id: str) -> tuple[Game, Plan]:
    """The game and one of the plans it is sold with; ``SelectionError`` on ``game_id`` or ``plan_id``."""
    game = catalog.game(game_id)
    if game is None:
        raise SelectionError("game_id", f"unknown game '{game_id}'")
    plan = catalog.plan(plan_id)
    if plan is None:
        raise SelectionError("plan_id", f"unknown plan '{plan_id}'")
    if plan.id not in game.plans:
        raise SelectionError("plan_id", f"plan '{plan_id}' is not offered for {game.name}")
    return game, plan


def resolve(
    catalog: Catalog, *, game_id: str, plan_id: str, server_name: str, settings: dict[str, str]
) -> tuple[Game, Plan, str, dict[str, str], ServerSpec]:
    """Check a customer's selection and build the server spec and the price source.

    Returns the game, the plan, the cleaned server name, the accepted settings and the spec. Raises
    ``SelectionError`` naming the first field that is wrong. The period is chosen apart, with
    ``choose_period``."""
    game, plan = offered_plan(catalog, game_id=game_id, plan_id=plan_id)
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
