"""Stripe's cursor pagination for list endpoints (``limit``, ``starting_after``, ``ending_before``).

Lists are newest first, at most 100 per page, 10 by default, wrapped as
``{"object": "list", "data": [...], "has_more": ..., "url": ...}`` so the SDK's ``ListObject`` (and its
auto-pagination) works against the fake.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from stripe_fake.errors import invalid_request, resource_missing
from stripe_fake.forms import Params
from stripe_fake.params import opt_int, opt_str

T = TypeVar("T")

LIST_PARAMS = frozenset({"limit", "starting_after", "ending_before", "expand"})


def created_filter(params: Params) -> Callable[[int], bool]:
    """``created`` as an exact timestamp or a ``{gt,gte,lt,lte}`` range."""
    raw = params.get("created")
    if raw is None or raw == "":
        return lambda _created: True
    if isinstance(raw, str):
        exact = opt_int(params, "created")
        return lambda created: created == exact
    if not isinstance(raw, dict):
        raise invalid_request("Invalid hash", "created")
    bounds = {op: opt_int(raw, op, f"created[{op}]") for op in ("gt", "gte", "lt", "lte")}
    for op in raw:
        if op not in bounds:
            raise invalid_request(f"Received unknown parameter: created[{op}]", f"created[{op}]")

    def accept(created: int) -> bool:
        gt, gte, lt, lte = bounds["gt"], bounds["gte"], bounds["lt"], bounds["lte"]
        return (
            (gt is None or created > gt)
            and (gte is None or created >= gte)
            and (lt is None or created < lt)
            and (lte is None or created <= lte)
        )

    return accept


def paginate(
    items: Sequence[T],
    *,
    id_of: Callable[[T], str],
    render: Callable[[T], dict[str, Any]],
    params: Params,
    url: str,
    kind: str,
) -> dict[str, Any]:
    """One page of ``items`` (already filtered and sorted newest first)."""
    limit = opt_int(params, "limit", minimum=1) or 10
    if limit > 100:
        raise invalid_request("This value must be less than or equal to 100.", "limit")
    starting_after = opt_str(params, "starting_after")
    ending_before = opt_str(params, "ending_before")
    ids = [id_of(item) for item in items]
    if starting_after is not None:
        if starting_after not in ids:
            raise resource_missing(kind, starting_after, "starting_after", status=400)
        start = ids.index(starting_after) + 1
        page = list(items[start : start + limit])
        has_more = len(items) > start + limit
    elif ending_before is not None:
        if ending_before not in ids:
            raise resource_missing(kind, ending_before, "ending_before", status=400)
        end = ids.index(ending_before)
        page = list(items[max(0, end - limit) : end])
        has_more = end - limit > 0
    else:
        page = list(items[:limit])
        has_more = len(items) > limit
    return {"object": "list", "data": [render(item) for item in page], "has_more": has_more, "url": url}
