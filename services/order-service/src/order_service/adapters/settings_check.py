"""Asking the provisioner whether the panel's egg accepts a customer's settings, before payment.

The catalog's own patterns catch most bad settings; the panel's egg rules are the final word and can
drift from the catalog (an administrator edits the egg). ``POST {PROVISIONER_URL}/validate-settings``
fills and checks the environment exactly as the provisioner will send it, so an order the panel would
refuse after payment is refused here with a 422 naming the setting.

Fail-open by design: when the provisioner cannot answer (down, slow, the panel unreachable), the order is
accepted and the provisioner's own failure path (ProvisionFailed ``invalid_egg_variables``) still stands
behind it. Availability of the shop does not depend on the panel.
"""

from __future__ import annotations

import httpx

from spawnpoint_contracts import ServerSpec
from spawnpoint_kit.logs import get_logger

log = get_logger(__name__)


class SettingsCheck:
    def __init__(self, base_url: str, *, timeout: float = 3.0) -> None:
        self._http = httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def problem(self, spec: ServerSpec, settings: dict[str, str]) -> tuple[str, str] | None:
        """``(field, message)`` of the first setting the egg refuses, or None (also when nobody can say)."""
        body = {"nest_id": spec.nest_id, "egg_id": spec.egg_id, "settings": settings, "environment": spec.environment}
        try:
            response = await self._http.post("/validate-settings", json=body)
        except httpx.HTTPError as exc:
            log.warning("settings check unavailable; accepting the order", error=repr(exc))
            return None
        if response.status_code == 404:
            return "game_id", "this game cannot be ordered at the moment (its panel egg is missing)"
        if response.status_code != 200:
            log.warning("settings check unavailable; accepting the order", status=response.status_code)
            return None
        for problem in response.json().get("problems", []):
            field = str(problem.get("field", ""))
            if field.startswith("settings."):
                return field, str(problem.get("message", "is not accepted by the game server"))
            return "game_id", f"this game cannot be ordered at the moment ({problem.get('message', field)})"
        return None
