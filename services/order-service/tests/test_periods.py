"""Unit tests of the catalog's periods: what a plan is sold by, its default, and the old single price."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from order_service.adapters.catalog_file import load_catalog
from order_service.config import DEFAULT_CATALOG
from order_service.domain.catalog import Catalog, Plan, SelectionError, choose_period
from spawnpoint_contracts import Billing

pytestmark = pytest.mark.unit

LIMITS = {
    "limits": {"memory": 1024, "swap": 0, "disk": 1024, "io": 500, "cpu": 100},
    "feature_limits": {"databases": 0, "backups": 0, "allocations": 0},
    "deploy": {"locations": [1]},
}


def _plan(**fields: Any) -> Plan:
    return Plan.model_validate({"id": "basic", "name": "Basic", **LIMITS, **fields})


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(DEFAULT_CATALOG)


def test_every_shipped_plan_is_sold_monthly_quarterly_yearly_and_once_and_defaults_to_the_fixed_term(
    catalog: Catalog,
) -> None:
    for plan in catalog.plans:
        assert list(plan.periods) == ["monthly", "quarterly", "yearly", "once-30d"]
        assert plan.default_period == "once-30d"
        assert plan.price == plan.periods["once-30d"].price
        assert plan.periods["once-30d"].billing("once-30d") == Billing(
            kind="fixed_term", term_days=30, period_id="once-30d"
        )
    standard = catalog.plan("standard")
    assert standard is not None
    assert standard.periods["quarterly"].billing("quarterly") == Billing(
        kind="subscription", interval="month", interval_count=3, period_id="quarterly"
    )
    assert standard.periods["yearly"].billing("yearly").interval_count == 1  # defaults to 1
    assert standard.price.amount == 1500, "the one-time price of the original flow is unchanged"


def test_an_old_catalog_with_a_single_price_still_loads_as_a_30_day_fixed_term(tmp_path: Path) -> None:
    old = tmp_path / "catalog.yaml"
    old.write_text(
        """
games:
  - {id: g, name: G, panel: {egg: 1, docker_image: i, startup: s}, plans: [starter]}
plans:
  - id: starter
    name: Starter
    price: {amount: 500, currency: eur}
    limits: {memory: 2048, swap: 0, disk: 10240, io: 500, cpu: 100}
    feature_limits: {databases: 0, backups: 1, allocations: 0}
    deploy: {locations: [1], tags: [game], port_range: []}
""",
        encoding="utf-8",
    )
    plan = load_catalog(old).plan("starter")
    assert plan is not None
    assert list(plan.periods) == ["once-30d"] and plan.default_period == "once-30d"
    assert (plan.price.amount, plan.price.currency) == (500, "eur")
    assert plan.periods["once-30d"].billing("once-30d") == Billing(
        kind="fixed_term", term_days=30, period_id="once-30d"
    )


def test_the_default_period_is_the_first_fixed_term_else_the_first_listed() -> None:
    mixed = _plan(
        periods={
            "monthly": {"amount": 100, "currency": "eur", "interval": "month"},
            "once-7d": {"amount": 30, "currency": "eur", "term_days": 7},
            "once-30d": {"amount": 100, "currency": "eur", "term_days": 30},
        }
    )
    assert mixed.default_period == "once-7d" and mixed.price.amount == 30
    subscriptions = _plan(
        periods={
            "yearly": {"amount": 1000, "currency": "eur", "interval": "year"},
            "monthly": {"amount": 100, "currency": "eur", "interval": "month"},
        }
    )
    assert subscriptions.default_period == "yearly"
    chosen = _plan(
        periods={
            "monthly": {"amount": 100, "currency": "eur", "interval": "month"},
            "once-30d": {"amount": 100, "currency": "eur", "term_days": 30},
        },
        default_period="monthly",
    )
    assert chosen.default_period == "monthly"


@pytest.mark.parametrize(
    ("period", "message"),
    [
        ({"interval": "month", "term_days": 30}, "both a subscription"),
        ({}, "needs an interval"),
        ({"term_days": 30, "interval_count": 2}, "interval_count belongs to subscriptions"),
    ],
)
def test_a_period_must_be_a_subscription_or_a_fixed_term_and_the_error_names_plan_and_period(
    period: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        _plan(periods={"weird": {"amount": 100, "currency": "eur", **period}})
    assert "plan basic, period weird" in str(refused.value) and message in str(refused.value)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {
                "price": {"amount": 1, "currency": "eur"},
                "periods": {"m": {"amount": 1, "currency": "eur", "term_days": 1}},
            },
            "either price",
        ),
        ({"periods": {"m": {"amount": 1, "currency": "eur", "term_days": 1}}, "default_period": "yearly"}, "yearly"),
        ({"periods": {"m": {"amount": 1, "currency": "eur", "interval": "fortnight"}}}, "interval"),
        (
            {"periods": {"m": {"amount": 1, "currency": "eur", "interval": "month", "interval_count": 0}}},
            "interval_count",
        ),
        ({"periods": {"Monthly!": {"amount": 1, "currency": "eur", "term_days": 1}}}, "Monthly!"),
        ({"periods": {}}, "periods"),
    ],
)
def test_a_plan_with_inconsistent_periods_is_refused(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        _plan(**fields)


def test_choosing_a_period(catalog: Catalog) -> None:
    plan = catalog.plan("pro")
    assert plan is not None
    assert choose_period(plan, None) == ("once-30d", plan.periods["once-30d"])
    assert choose_period(plan, "monthly") == ("monthly", plan.periods["monthly"])
    with pytest.raises(SelectionError) as refused:
        choose_period(plan, "weekly")
    assert refused.value.field == "period" and "monthly" in refused.value.message
