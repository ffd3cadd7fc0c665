"""Unit tests of order-service's pure rules: the catalog and the order state machine."""

from __future__ import annotations

import itertools

import pytest

from order_service.adapters.catalog_file import load_catalog
from order_service.config import DEFAULT_CATALOG
from order_service.domain.catalog import Catalog, SelectionError, resolve
from order_service.domain.order import ORDER, TRANSITIONS, OrderStatus, Trigger

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(DEFAULT_CATALOG)


def test_the_shipped_catalog_resolves_every_game_with_every_offered_plan(catalog: Catalog) -> None:
    for game in catalog.games:
        for plan_id in game.plans:
            _, plan, _, _, spec = resolve(catalog, game_id=game.id, plan_id=plan_id, server_name="x", settings={})
            assert spec.egg_id == game.panel.egg
            assert spec.limits == plan.limits
            for key, rule in game.settings.items():
                if rule.default is not None:
                    assert spec.environment[key] == rule.default


def test_customer_settings_override_game_defaults(catalog: Catalog) -> None:
    *_, spec = resolve(
        catalog,
        game_id="minecraft-paper",
        plan_id="standard",
        server_name="w",
        settings={"MINECRAFT_VERSION": "1.20.4"},
    )
    assert spec.environment["MINECRAFT_VERSION"] == "1.20.4"
    assert spec.environment["SERVER_JARFILE"] == "server.jar"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"game_id": "tetris"}, "game_id"),
        ({"plan_id": "huge"}, "plan_id"),
        ({"game_id": "valheim", "plan_id": "starter"}, "plan_id"),
        ({"server_name": ""}, "server_name"),
        ({"server_name": "x" * 65}, "server_name"),
        ({"server_name": "bad\nname"}, "server_name"),
        ({"settings": {"BUILD_NUMBER": "1"}}, "settings.BUILD_NUMBER"),
        ({"settings": {"MINECRAFT_VERSION": "1.21; rm -rf /"}}, "settings.MINECRAFT_VERSION"),
    ],
)
def test_a_wrong_selection_names_the_field(catalog: Catalog, kwargs: dict[str, object], field: str) -> None:
    args: dict[str, object] = {"game_id": "minecraft-paper", "plan_id": "standard", "server_name": "w", "settings": {}}
    args.update(kwargs)
    with pytest.raises(SelectionError) as err:
        resolve(catalog, **args)  # type: ignore[arg-type]
    assert err.value.field == field


def test_a_catalog_naming_an_unknown_plan_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown plans"):
        Catalog.model_validate(
            {
                "games": [
                    {"id": "g", "name": "G", "panel": {"egg": 1, "docker_image": "i", "startup": "s"}, "plans": ["p"]}
                ],
                "plans": [],
            }
        )


@pytest.mark.parametrize(("status", "trigger"), list(itertools.product(OrderStatus, Trigger)))
def test_every_state_and_trigger_pair(status: OrderStatus, trigger: Trigger) -> None:
    result = ORDER.next(status, trigger)
    if (status, trigger) in TRANSITIONS:
        assert result == TRANSITIONS[(status, trigger)]
    else:
        assert result is None  # a no-op, never an error: events arrive duplicated and out of order


def test_paid_is_never_undone_by_a_late_expiry_or_failure() -> None:
    assert ORDER.next(OrderStatus.PAID, Trigger.EXPIRED) is None
    assert ORDER.next(OrderStatus.PAID, Trigger.PAYMENT_FAILED) is None
    assert ORDER.next(OrderStatus.PAID, Trigger.PAID) is None


@pytest.mark.parametrize("value", ["abcde\u0000", "abcde\n-x", "abc\u001bde"])
def test_a_setting_with_a_control_character_is_refused_naming_the_field(catalog: Catalog, value: str) -> None:
    """Finding 4: a Valheim password ending in NUL passed the catalog and was a 500 at PostgreSQL."""
    with pytest.raises(SelectionError) as refused:
        resolve(catalog, game_id="valheim", plan_id="standard", server_name="v", settings={"SERVER_PASS": value})
    assert refused.value.field == "settings.SERVER_PASS"
    assert "control characters" in refused.value.message
