"""Value objects embedded in event payloads.

``OrderSnapshot`` is the order as the customer bought it, including the server specification resolved
from the catalog at order time. It travels with OrderCreated and again with OrderPaid, so the provisioner
builds exactly what was paid for without calling another service or reading a catalog that may have
changed since.
"""

from __future__ import annotations

import uuid
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from .envelope import WireModel


class Limits(WireModel):
    """Resource limits of a panel server (Pterodactyl ``limits``): MiB, percent of a core, io weight."""

    memory: int = Field(ge=0)
    swap: int = Field(ge=-1)
    disk: int = Field(ge=0)
    io: int = Field(ge=10, le=1000)
    cpu: int = Field(ge=0)
    threads: str | None = None


class FeatureLimits(WireModel):
    """How many databases, backups and extra allocations the server may have."""

    databases: int = Field(ge=0)
    backups: int = Field(ge=0)
    allocations: int = Field(ge=0)


class Deploy(WireModel):
    """Where the panel may place the server: Pterodactyl locations or Pelican node tags."""

    locations: list[int] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    port_range: list[str] = Field(default_factory=list)
    dedicated_ip: bool = False


class ServerSpec(WireModel):
    """What the provisioner asks the panel for. ``environment`` already merges the customer's allowed
    settings over the game's defaults; the provisioner adds the egg's own defaults for the rest."""

    nest_id: int | None = None
    egg_id: int
    docker_image: str
    startup: str
    environment: dict[str, str] = Field(default_factory=dict)
    limits: Limits
    feature_limits: FeatureLimits
    deploy: Deploy
    start_on_completion: bool = True
    oom_disabled: bool = True


class Billing(WireModel):
    r"""How the server is paid for: a Stripe subscription renewed every ``interval_count`` ``interval``\ s,
    or a fixed term paid up front (``term_days``), extended by paying again. Orders from before rentals
    carry no ``billing`` and are read as a 30-day fixed term (``Billing.FIXED_TERM_DEFAULT_DAYS``)."""

    kind: Literal["subscription", "fixed_term"]
    interval: Literal["day", "week", "month", "year"] | None = Field(
        default=None, description="Subscriptions only: the unit of the billing period."
    )
    interval_count: int = Field(default=1, ge=1, le=36)
    term_days: int | None = Field(default=None, ge=1, description="Fixed terms only: days one payment buys.")
    period_id: str = Field(
        min_length=1, max_length=40, description="The catalog's name for the period: monthly, quarterly, once-30d…"
    )

    FIXED_TERM_DEFAULT_DAYS: ClassVar[int] = 30

    @model_validator(mode="after")
    def _one_way_to_renew(self) -> Billing:
        if self.kind == "subscription" and (self.interval is None or self.term_days is not None):
            raise ValueError("a subscription has an interval and no term_days")
        if self.kind == "fixed_term" and (self.term_days is None or self.interval is not None):
            raise ValueError("a fixed term has term_days and no interval")
        return self


class OrderSnapshot(WireModel):
    """The order as the customer bought it."""

    order_id: uuid.UUID
    user_id: str
    email: str
    game_id: str
    game_name: str
    plan_id: str
    plan_name: str
    server_name: str
    settings: dict[str, str] = Field(default_factory=dict, description="What the customer chose.")
    secret_settings: list[str] = Field(
        default_factory=list,
        description="Names of settings that are secrets (a server password): only the way to the panel carries "
        "their values; every other copy, trail and log shows them redacted (see ``redacted``).",
    )
    amount: int = Field(ge=0, description="Price in the currency's minor unit, computed by the server.")
    currency: str = Field(min_length=3, max_length=3)
    server_spec: ServerSpec
    billing: Billing | None = Field(
        default=None,
        description="What was bought: the period and the way it renews. Absent on orders placed "
        "before rentals existed (a fixed term of 30 days).",
    )
    locale: str = Field(
        default="en",
        pattern=r"^[a-z]{2,3}(-[A-Z]{2})?$",
        description="The customer's language for what they are told (e-mails): a short BCP-47 code such as "
        "`en` or `de`. Orders from before locales read as `en`.",
    )
    time_zone: str = Field(
        default="UTC",
        min_length=1,
        max_length=64,
        description="The customer's IANA time zone (`Europe/Berlin`), for the dates they are told. Orders from "
        "before time zones read as `UTC`.",
    )
    customer_name: str | None = Field(
        default=None,
        max_length=100,
        description="The customer's display name, from their token's `name` claim (control characters removed), "
        "what e-mails greet them by. Absent when the token had none, and on orders from before names.",
    )


REDACTED = "[redacted]"


def redact_order(order: dict[str, Any]) -> dict[str, Any]:
    """A JSON order snapshot with its secret settings' values replaced, in ``settings`` and in the server's
    ``environment`` (where the same variable travels to the panel)."""
    secret = set(order.get("secret_settings") or ())
    if not secret:
        return order
    copy = dict(order)
    copy["settings"] = {k: (REDACTED if k in secret else v) for k, v in (order.get("settings") or {}).items()}
    spec = dict(order.get("server_spec") or {})
    if isinstance(spec.get("environment"), dict):
        spec["environment"] = {k: (REDACTED if k in secret else v) for k, v in spec["environment"].items()}
        copy["server_spec"] = spec
    return copy
