"""Everything one running fake panel holds: data, simulators, limiter, faults and log.

One :class:`PanelRuntime` lives on ``app.state.runtime``. ``reset()`` restores the seed and
clears every injected behaviour while keeping the startup options, which is what
``DELETE /_fake/data`` does between tests.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any

from panel_fake.config import PanelConfig
from panel_fake.faults import FaultBook, RequestLog
from panel_fake.ratelimit import RateLimiter
from panel_fake.router import Route, Router
from panel_fake.seed import build_state, default_seed, load_seed_file
from panel_fake.store import PanelState
from panel_fake.wings import InstallPlan, InstallSimulator, WingsSimulator


@dataclass
class RaceInjection:
    """Makes the next create with an external id lose a race after validation (500 QueryException)."""

    mode: str
    winner: bool
    remaining: int


class PanelRuntime:
    """The fake panel's mutable world."""

    def __init__(self, config: PanelConfig, routes: list[Route]) -> None:
        self.config = config
        self.flavor = config.flavor
        self.router = Router(routes, config.flavor)
        self.seed_document: dict[str, Any] = (
            load_seed_file(config.seed_path) if config.seed_path else default_seed(config.flavor)
        )
        self.rng = random.Random(config.random_seed)
        self.state: PanelState = build_state(self.seed_document, config.flavor, config.app_key)
        self.wings = WingsSimulator()
        self.installs = InstallSimulator(default=InstallPlan("ok", config.install_seconds))
        self.limiter = RateLimiter(config.rate_limit_period)
        self.rate_limit = config.effective_rate_limit
        self.client_rate_limit = config.effective_client_rate_limit
        self.hang_seconds = config.hang_seconds
        self.faults = FaultBook()
        self.log = RequestLog()
        self.races: dict[str, RaceInjection] = {}
        self.hang_overrides: dict[int, float] = {}
        self.in_flight = 0
        """API requests being handled now (a hung create counts until it answers)."""
        # Derived per-state objects (rule tables bound to this state); dropped on reset.
        self.cache: dict[str, Any] = {}

    def reset(self) -> None:
        """Back to the seed with startup options; drops servers, faults, log and counters."""
        self.state = build_state(self.seed_document, self.config.flavor, self.config.app_key)
        self.rng = random.Random(self.config.random_seed)
        self.wings.reset()
        self.installs.reset(InstallPlan("ok", self.config.install_seconds))
        self.limiter.reset()
        self.rate_limit = self.config.effective_rate_limit
        self.client_rate_limit = self.config.effective_client_rate_limit
        self.hang_seconds = self.config.hang_seconds
        self.faults.clear()
        self.log.clear()
        self.races.clear()
        self.hang_overrides.clear()
        self.cache.clear()

    @staticmethod
    def now() -> float:
        return time.monotonic()

    def tick(self) -> None:
        """Apply installs that have finished by now."""
        self.installs.tick(self.state, self.now())

    def hang_for(self, node_id: int) -> float:
        return self.hang_overrides.get(node_id, self.hang_seconds)

    def take_race(self, external_id: str | None) -> RaceInjection | None:
        if external_id is None:
            return None
        key = external_id.casefold()
        race = self.races.get(key)
        if race is None:
            return None
        race.remaining -= 1
        if race.remaining <= 0:
            del self.races[key]
        return race
