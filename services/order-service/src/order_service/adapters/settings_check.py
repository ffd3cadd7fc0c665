"""Asking the provisioner whether the panel's egg accepts a customer's settings, before payment.

The catalog's own patterns catch most bad settings; the panel's egg rules are the final word and can
drift from the catalog (an administrator edits the egg). ``POST {PROVISIONER_URL}/validate-settings``
fills and checks the environment exactly as the provisioner will send it, so an order the panel would
refuse after payment is refused here with a 422 naming the setting.

Fail-open by design: when the provisioner cannot answer (down, slow, the panel unreachable), the order is
accepted and the provisioner's own failure path (ProvisionFailed ``invalid_egg_variables``) still stands
behind it. Availability of the shop does not depend on the panel.

Answers are cached for a short while per (egg, environment): most orders choose the same settings, and
the egg's rules change rarely (the provisioner caches the egg for minutes too). Only definite answers are
cached; "could not ask" is not.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping

import httpx

from spawnpoint_contracts import ServerSpec
from spawnpoint_kit.logs import get_logger

log = get_logger(__name__)


Problem = tuple[str, str] | None


class SettingsCheck:
    def __init__(self, base_url: str, *, timeout: float = 3.0, cache_seconds: float = 60.0) -> None:
        self._http = httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout)
        self._cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, Problem]] = {}

    async def aclose(self) -> None:
        await self._http.aclose()

    async def problem(self, spec: ServerSpec, settings: dict[str, str]) -> Problem:
        """``(field, message)`` of the first setting the egg refuses, or None (also when nobody can say)."""
        body = {"nest_id": spec.nest_id, "egg_id": spec.egg_id, "settings": settings, "environment": spec.environment}
        key = json.dumps(body, sort_keys=True)
        cached = self._cache.get(key)
        if cached is not None and time.monotonic() - cached[0] < self._cache_seconds:
            return cached[1]
        answer, definite = await self._ask(body)
        if definite:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[key] = (time.monotonic(), answer)
        return answer

    async def _ask(self, body: Mapping[str, object]) -> tuple[Problem, bool]:
        """The provisioner's answer, and whether it is a definite one (worth caching)."""
        try:
            response = await self._http.post("/validate-settings", json=body)
        except httpx.HTTPError as exc:
            log.warning("settings check unavailable; accepting the order", error=repr(exc))
            return None, False
        if response.status_code == 404:
            return ("game_id", "this game cannot be ordered at the moment (its panel egg is missing)"), True
        if response.status_code != 200:
            log.warning("settings check unavailable; accepting the order", status=response.status_code)
            return None, False
        for problem in response.json().get("problems", []):
            field = str(problem.get("field", ""))
            if field.startswith("settings."):
                return (field, str(problem.get("message", "is not accepted by the game server"))), True
            return ("game_id", f"this game cannot be ordered at the moment ({problem.get('message', field)})"), True
        return None, True
