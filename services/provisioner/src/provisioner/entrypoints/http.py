"""The provisioner's HTTP API beyond health and metrics: checking settings before payment.

``POST /validate-settings`` is called by order-service while a customer places an order, so that a
setting the panel's egg would refuse is a 422 at the checkout instead of a failed server after payment.
It is an internal endpoint (no customer data, no side effect but a cached egg read): keep it on the
internal network like ``/metrics``.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from ..deps import EggsDep
from ..domain.failures import classify
from ..domain.panel import PanelError, PanelUnreachable
from ..service_layer.settings_check import check_settings

router = APIRouter(tags=["settings"])


class ValidateSettingsIn(BaseModel):
    nest_id: int | None = Field(default=None, description="The panel's nest (Pterodactyl); ignored on Pelican.")
    egg_id: int = Field(description="The panel's egg id, from the catalog.")
    settings: dict[str, str] = Field(default_factory=dict, description="What the customer chose.")
    environment: dict[str, str] = Field(
        default_factory=dict, description="The catalog's defaults for the game's egg variables."
    )


class SettingsProblemOut(BaseModel):
    field: str = Field(description="settings.<NAME> for a customer setting, environment.<NAME> for the catalog's.")
    variable: str
    rule: str
    message: str


class ValidateSettingsOut(BaseModel):
    valid: bool
    environment: dict[str, str] = Field(description="Every egg variable as it will be sent to the panel.")
    problems: list[SettingsProblemOut]
    unchecked: list[str] = Field(description="VARIABLE:rule pairs this check cannot evaluate (the panel will).")


@router.post(
    "/validate-settings",
    response_model=ValidateSettingsOut,
    summary="Check game settings against the panel's egg rules, before payment",
    responses={
        404: {"description": "The panel does not know this egg"},
        503: {"description": "The panel could not be asked (unreachable or rate limited); try again"},
    },
)
async def validate_settings(body: ValidateSettingsIn, eggs: EggsDep) -> ValidateSettingsOut:
    try:
        result = await check_settings(
            eggs,
            nest_id=body.nest_id,
            egg_id=body.egg_id,
            settings=body.settings,
            defaults=body.environment,
        )
    except (PanelError, PanelUnreachable) as exc:
        failure = classify(exc)
        if isinstance(exc, PanelError) and exc.status == 404:
            raise HTTPException(status_code=404, detail=f"the panel does not know egg {body.egg_id}") from exc
        raise HTTPException(status_code=503, detail=f"the panel could not be asked: {failure.message}") from exc
    return ValidateSettingsOut(
        valid=result.valid,
        environment=result.environment,
        problems=[SettingsProblemOut(**vars(p)) for p in result.problems],
        unchecked=result.unchecked,
    )
