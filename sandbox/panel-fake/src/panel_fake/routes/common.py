"""Shared controller helpers: validation, Spatie-style filters and sorts, pagination."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from starlette.responses import Response

from panel_fake import envelopes, errors, pagination, php
from panel_fake.pipeline import ApiContext
from panel_fake.validation import RuleSpec, Sometimes, validate

T = TypeVar("T")


def validate_or_raise(
    data: dict[str, Any],
    rules: Iterable[tuple[str, RuleSpec]],
    *,
    sometimes: Iterable[Sometimes] = (),
    attributes: dict[str, str] | None = None,
) -> None:
    failures = validate(data, rules, sometimes=sometimes, attributes=attributes)
    if failures:
        raise errors.validation_failed(failures)


def not_implemented(ctx: ApiContext) -> Response:
    """Routes the real panel has but the fake does not model: say so plainly (501)."""
    raise errors.PanelError(
        501,
        "NotImplementedByPanelFake",
        f"{ctx.method} {ctx.path} exists on the real panel but is not implemented by panel-fake.",
    )


async def not_implemented_handler(ctx: ApiContext) -> Response:
    return not_implemented(ctx)


def _filter_values(raw: Any) -> list[str] | None:
    """Spatie splits filter values on commas; an empty value filters nothing."""
    if raw is None:
        return None
    if isinstance(raw, list):
        values = [php.to_string(item) for item in raw if item is not None]
    elif isinstance(raw, dict):
        values = [php.to_string(item) for item in raw.values() if item is not None]
    else:
        values = [part for part in php.to_string(raw).split(",") if part != ""]
    return values or None


def apply_filters(
    ctx: ApiContext,
    rows: Iterable[T],
    allowed: dict[str, Callable[[T], Any]],
    exact: Sequence[str] = (),
) -> list[T]:
    """``?filter[name]=value``: a case-insensitive partial (LIKE) match, unknown names a 400."""
    requested = ctx.query.get("filter")
    result = list(rows)
    if not isinstance(requested, dict):
        return result
    unknown = [name for name in requested if name not in allowed]
    if unknown:
        raise errors.PanelError(
            400,
            "InvalidFilterQuery",
            f"Requested filter(s) `{', '.join(unknown)}` are not allowed. "
            f"Allowed filter(s) are `{', '.join(allowed)}`.",
        )
    for name, raw in requested.items():
        values = _filter_values(raw)
        if values is None:
            continue
        getter = allowed[name]
        if name in exact:
            result = [row for row in result if php.to_string(getter(row)) in values]
        else:
            lowered = [value.lower() for value in values]
            result = [
                row
                for row in result
                if getter(row) is not None and any(value in php.to_string(getter(row)).lower() for value in lowered)
            ]
    return result


def apply_sort(ctx: ApiContext, rows: list[T], allowed: dict[str, Callable[[T], Any]]) -> list[T]:
    """``?sort=-id``; unknown names a 400."""
    raw = ctx.query.get("sort")
    if not isinstance(raw, str) or raw == "":
        return rows
    fields = [part.strip() for part in raw.split(",") if part.strip()]
    unknown = [name.lstrip("-") for name in fields if name.lstrip("-") not in allowed]
    if unknown:
        raise errors.PanelError(
            400,
            "InvalidSortQuery",
            f"Requested sort(s) `{', '.join(unknown)}` is not allowed. Allowed sort(s) are `{', '.join(allowed)}`.",
        )
    for name in reversed(fields):
        key = allowed[name.lstrip("-")]
        rows = sorted(rows, key=key, reverse=name.startswith("-"))
    return rows


def paginate(ctx: ApiContext, rows: Sequence[T], render: Callable[[T], dict[str, Any]]) -> dict[str, Any]:
    """``->paginate($request->query('per_page') ?? 50)`` with Laravel's corner cases (see ``pagination``)."""
    page = pagination.window(ctx.query.get("per_page"), ctx.query.get("page"), len(rows))
    shown = rows[page.slice(len(rows))]
    return envelopes.paginated(
        [render(row) for row in shown],
        total=len(rows),
        per_page=page.per_page,
        page=page.page,
        base_url=f"{ctx.base_url}{ctx.path}",
        last_page=page.last_page,
    )
