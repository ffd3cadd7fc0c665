"""The egg cache bounds what unknown eggs cost, and the settings check's lookups have a budget of their own
(finding 10 of the reliability issue: each new egg id was an uncached panel call sharing paid orders' budget)."""

from __future__ import annotations

import pytest

from provisioner.adapters.eggs import BudgetedEggs, EggCache
from provisioner.domain.panel import Egg, PanelError, PanelUnreachable

pytestmark = pytest.mark.unit


class CountingPanel:
    flavor = "pterodactyl"

    def __init__(self) -> None:
        self.egg_calls = 0

    async def egg(self, *, nest_id: int | None, egg_id: int) -> Egg:
        self.egg_calls += 1
        if egg_id >= 1000:
            raise PanelError(404, "NotFoundHttpException", "The requested resource could not be found on the server.")
        return Egg(id=egg_id, variables=())


async def test_an_egg_the_panel_does_not_know_is_asked_for_once_a_minute_not_once_a_lookup() -> None:
    panel = CountingPanel()
    cache = EggCache(panel)  # type: ignore[arg-type]  # the calls the cache makes, nothing more
    for _ in range(5):
        with pytest.raises(PanelError):
            await cache.get(nest_id=1, egg_id=4242)
    assert panel.egg_calls == 1


async def test_the_cache_keeps_a_bounded_number_of_eggs_and_no_lock_once_done() -> None:
    panel = CountingPanel()
    cache = EggCache(panel, max_entries=3)  # type: ignore[arg-type]
    for egg_id in range(10):
        await cache.get(nest_id=1, egg_id=egg_id)
    assert len(cache._items) == 3 and not cache._locks
    await cache.get(nest_id=1, egg_id=9)
    assert panel.egg_calls == 10, "the newest are kept"


async def test_the_settings_checks_misses_spend_their_own_budget_and_hits_are_free() -> None:
    panel = CountingPanel()
    cache = EggCache(panel)  # type: ignore[arg-type]
    budgeted = BudgetedEggs(cache, misses_per_minute=2)
    await budgeted.get(nest_id=1, egg_id=1)
    await budgeted.get(nest_id=1, egg_id=2)
    with pytest.raises(PanelUnreachable, match="budget"):
        await budgeted.get(nest_id=1, egg_id=3)
    for _ in range(10):
        await budgeted.get(nest_id=1, egg_id=1)  # cached: free
    await cache.get(nest_id=1, egg_id=3)  # a paid order's lookup is not on that budget
    assert panel.egg_calls == 3
