"""Startup options of the fake panel, from flags and environment variables.

Everything a test or a benchmark needs to change at start is here; what it needs to change
while running goes through the ``/_fake`` control API instead.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

Flavor = Literal["pterodactyl", "pelican"]
FLAVORS: tuple[Flavor, ...] = ("pterodactyl", "pelican")

# The body of the seeded admin application key; the prefix depends on the flavour.
DEFAULT_KEY_BODY = "spawnpointdevkey0000000000000000000000000000"
APPLICATION_PREFIX: dict[Flavor, str] = {"pterodactyl": "ptla_", "pelican": "papp_"}
CLIENT_PREFIX: dict[Flavor, str] = {"pterodactyl": "ptlc_", "pelican": "pacc_"}
DEFAULT_RATE_LIMIT: dict[Flavor, int] = {"pterodactyl": 240, "pelican": 256}
DEFAULT_CLIENT_RATE_LIMIT: dict[Flavor, int] = {"pterodactyl": 720, "pelican": 256}


def default_app_key(flavor: Flavor) -> str:
    """``ptla_spawnpointdevkey000…`` on Pterodactyl, ``papp_…`` on Pelican."""
    return APPLICATION_PREFIX[flavor] + DEFAULT_KEY_BODY


@dataclass(frozen=True)
class PanelConfig:
    """Options fixed at startup. ``None`` means "the flavour's default"."""

    flavor: Flavor = "pterodactyl"
    host: str = "127.0.0.1"
    port: int = 8081
    app_key: str | None = None
    rate_limit: int | None = None
    client_rate_limit: int | None = None
    rate_limit_period: float = 60.0
    install_seconds: float = 3.0
    hang_seconds: float = 120.0
    seed_path: str | None = None
    log_level: str = "warning"
    random_seed: int | None = None

    @property
    def effective_rate_limit(self) -> int:
        """Application API requests per period; 0 means unlimited."""
        return DEFAULT_RATE_LIMIT[self.flavor] if self.rate_limit is None else self.rate_limit

    @property
    def effective_client_rate_limit(self) -> int:
        """Client API requests per period; 0 means unlimited."""
        if self.client_rate_limit is not None:
            return self.client_rate_limit
        return DEFAULT_CLIENT_RATE_LIMIT[self.flavor]


def parse_flavor(value: str) -> Flavor:
    lowered = value.strip().lower()
    if lowered == "pterodactyl":
        return "pterodactyl"
    if lowered == "pelican":
        return "pelican"
    raise ValueError(f"unknown flavor {value!r}: expected 'pterodactyl' or 'pelican'")


def env_defaults(environ: Mapping[str, str] | None = None) -> dict[str, object]:
    """Read ``PANEL_FAKE_*`` variables into keyword arguments for :class:`PanelConfig`."""
    env = os.environ if environ is None else environ
    values: dict[str, object] = {}
    if "PANEL_FAKE_HOST" in env:
        values["host"] = env["PANEL_FAKE_HOST"]
    if "PANEL_FAKE_PORT" in env:
        values["port"] = int(env["PANEL_FAKE_PORT"])
    if "PANEL_FAKE_FLAVOR" in env:
        values["flavor"] = parse_flavor(env["PANEL_FAKE_FLAVOR"])
    if env.get("PANEL_FAKE_APP_KEY"):
        values["app_key"] = env["PANEL_FAKE_APP_KEY"]
    if "PANEL_FAKE_RATE_LIMIT" in env:
        values["rate_limit"] = int(env["PANEL_FAKE_RATE_LIMIT"])
    if "PANEL_FAKE_CLIENT_RATE_LIMIT" in env:
        values["client_rate_limit"] = int(env["PANEL_FAKE_CLIENT_RATE_LIMIT"])
    if "PANEL_FAKE_INSTALL_SECONDS" in env:
        values["install_seconds"] = float(env["PANEL_FAKE_INSTALL_SECONDS"])
    if "PANEL_FAKE_HANG_SECONDS" in env:
        values["hang_seconds"] = float(env["PANEL_FAKE_HANG_SECONDS"])
    if env.get("PANEL_FAKE_SEED"):
        values["seed_path"] = env["PANEL_FAKE_SEED"]
    if env.get("PANEL_FAKE_LOG_LEVEL"):
        values["log_level"] = env["PANEL_FAKE_LOG_LEVEL"]
    return values
