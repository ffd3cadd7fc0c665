"""Fractal's layout as the panel's ``PterodactylSerializer`` writes it.

Items are ``{"object", "attributes"}``, lists ``{"object": "list", "data"}``, paginated lists
add ``meta.pagination`` (with ``links`` an *object*, ``{}`` when empty), and included
relationships go *inside* ``attributes`` under ``relationships``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any


def timestamp(value: datetime | None) -> str | None:
    """``BaseTransformer::formatTimestamp``: ISO-8601 with a ``+00:00`` offset."""
    if value is None:
        return None
    return value.strftime("%Y-%m-%dT%H:%M:%S+00:00")


def model_timestamp(value: datetime | None) -> str | None:
    """Laravel's ``toArray()`` date format, used for egg and server variables."""
    if value is None:
        return None
    return value.strftime("%Y-%m-%dT%H:%M:%S.000000Z")


def item(resource: str, attributes: dict[str, Any], relationships: dict[str, Any] | None = None) -> dict[str, Any]:
    attrs = dict(attributes)
    if relationships:
        attrs["relationships"] = relationships
    return {"object": resource, "attributes": attrs}


def collection(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return {"object": "list", "data": list(items)}


def null_resource() -> dict[str, Any]:
    """What an include the key may not read renders as."""
    return {"object": "null_resource", "attributes": None}


def page_window(total: int, per_page: int, page: int) -> tuple[int, int, int]:
    """(offset, last_page, page) for a Laravel ``LengthAwarePaginator``."""
    last_page = max(1, math.ceil(total / per_page)) if per_page > 0 else 1
    page = max(1, page)
    return (page - 1) * per_page, last_page, page


def paginated(
    items: Sequence[dict[str, Any]],
    *,
    total: int,
    per_page: int,
    page: int,
    base_url: str,
    last_page: int | None = None,
) -> dict[str, Any]:
    """Fractal's ``ArraySerializer::paginator``; ``last_page`` when the caller computed it (Laravel's rules)."""
    if last_page is None:
        _, last_page, page = page_window(total, per_page, page)
    links: dict[str, str] = {}
    if page > 1:
        links["previous"] = f"{base_url}?page={page - 1}"
    if page < last_page:
        links["next"] = f"{base_url}?page={page + 1}"
    return {
        "object": "list",
        "data": list(items),
        "meta": {
            "pagination": {
                "total": total,
                "count": len(items),
                "per_page": per_page,
                "current_page": page,
                "total_pages": last_page,
                "links": links,
            }
        },
    }
