"""Checking a customer's game settings against the panel's egg before the customer pays.

order-service asks (``POST /validate-settings``) when an order is placed. The environment is filled
exactly as it will be at creation (``server_request.environment_for``) and checked with the egg's own
rules (``domain/egg_rules.py``), using the cached egg, so a placed order costs no panel call in the
usual case. A problem on a variable the customer chose is theirs to fix (``settings.<NAME>``); a problem
on any other variable means the catalog and the panel's egg disagree (``environment.<NAME>``), which an
operator must fix.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..domain.egg_rules import check_environment
from ..domain.panel import Eggs
from ..domain.server_request import environment_for


@dataclass(frozen=True)
class SettingsProblem:
    field: str
    variable: str
    rule: str
    message: str


@dataclass(frozen=True)
class SettingsCheck:
    valid: bool
    environment: dict[str, str]
    problems: list[SettingsProblem]
    unchecked: list[str]


async def check_settings(
    eggs: Eggs,
    *,
    nest_id: int | None,
    egg_id: int,
    settings: Mapping[str, str],
    defaults: Mapping[str, str],
) -> SettingsCheck:
    egg = await eggs.get(nest_id=nest_id, egg_id=egg_id)
    environment = environment_for(egg, settings=settings, defaults=defaults)
    result = check_environment(egg, environment)
    problems = [
        SettingsProblem(
            field=f"settings.{p.variable}" if p.variable in settings else p.field,
            variable=p.variable,
            rule=p.rule,
            message=p.message,
        )
        for p in result.problems
    ]
    return SettingsCheck(result.valid, environment, problems, list(result.unchecked))
