"""Laravel's ``paginate()`` as the application API calls it: ``->paginate($request->query('per_page') ?? 50)``.

A drift reconciler walks every page of ``GET /servers``; if the fake paged differently from the
panel, a reconciler that passes here could skip or repeat servers in production. The corners
that follow from PHP, reproduced here (Eloquent ``Builder::paginate``, ``forPage``, ``limit``,
``offset`` and ``LengthAwarePaginator``):

* no ``per_page`` (or an empty one, which ``ConvertEmptyStringsToNull`` makes null): 50;
* ``per_page=0``: ``"0"`` is falsy, so the model's default of 15 applies;
* a negative ``per_page``: ``limit()`` ignores it, so every row comes back on one page that
  reports that negative ``per_page`` and ``total_pages: 1``;
* a non-numeric ``per_page`` (or an array): PHP 8 throws on the arithmetic, a 500;
* ``page`` is ``FILTER_VALIDATE_INT`` and at least 1, else 1; a page past the end is *not*
  clamped: it is empty and reports the page asked for.

Links carry only ``?page=N``: the panel never appends the other query parameters.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from panel_fake import errors, php

DEFAULT_PER_PAGE = 50
MODEL_PER_PAGE = 15
_LEADING_NUMERIC = re.compile(r"^[ \t\n\r\v\f]*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


@dataclass(frozen=True)
class PageWindow:
    """Which rows one page holds and what ``meta.pagination`` says about it."""

    offset: int
    limit: int | None
    per_page: int
    page: int
    last_page: int

    def slice(self, total: int) -> slice:
        stop = total if self.limit is None else min(total, self.offset + self.limit)
        return slice(self.offset, stop)


def current_page(raw: Any) -> int:
    """``Paginator::resolveCurrentPage``: a valid integer of at least 1, else 1."""
    page = php.filter_int(raw)
    return page if page is not None and page >= 1 else 1


def window(raw_per_page: Any, raw_page: Any, total: int) -> PageWindow:
    """The page Laravel would return for these raw query values over ``total`` rows."""
    page = current_page(raw_page)
    if raw_per_page is None:
        number = float(DEFAULT_PER_PAGE)
        shown = DEFAULT_PER_PAGE
    elif raw_per_page == "0" or raw_per_page is False:
        number = float(MODEL_PER_PAGE)
        shown = MODEL_PER_PAGE
    elif php.is_numeric(raw_per_page):
        number = php.to_number(raw_per_page)
        shown = php.to_int(raw_per_page)
    elif isinstance(raw_per_page, str) and _LEADING_NUMERIC.match(raw_per_page):
        # "10abc": PHP warns "A non-numeric value encountered"; Laravel turns that into an exception.
        raise errors.generic("ErrorException")
    else:
        # "abc" or per_page[]=…: "Unsupported operand types" in ($page - 1) * $perPage.
        raise errors.generic("TypeError")
    if number == 0:
        raise errors.generic("DivisionByZeroError")
    offset = max(0, int((page - 1) * number))
    limit = int(number) if number >= 0 else None
    last_page = max(math.ceil(total / number), 1)
    return PageWindow(offset=offset, limit=limit, per_page=shown, page=page, last_page=last_page)
