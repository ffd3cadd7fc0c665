"""Calendar arithmetic for billing periods.

Stripe bills monthly and yearly intervals on the calendar, anchored on the billing cycle anchor: a
subscription started on 31 January renews on 28 (or 29) February, then on 31 March. Periods are
therefore always computed from the anchor (``anchor + n intervals``), never from the previous period
end, so a short month does not drift the day of later renewals. Day and week intervals are fixed
lengths of time. All computations are in UTC, as Stripe's timestamps are.
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime

INTERVALS = ("day", "week", "month", "year")
DAY = 86_400


def add_intervals(anchor: int, interval: str, count: int) -> int:
    """``anchor`` moved forward by ``count`` intervals (``count`` may be 0), clamped to month ends."""
    if interval == "day":
        return anchor + count * DAY
    if interval == "week":
        return anchor + count * 7 * DAY
    start = datetime.fromtimestamp(anchor, UTC)
    months = count if interval == "month" else count * 12
    if interval not in ("month", "year"):
        raise ValueError(f"unknown interval {interval!r}")
    index = start.month - 1 + months
    year, month = start.year + index // 12, index % 12 + 1
    day = min(start.day, calendar.monthrange(year, month)[1])
    moved = start.replace(year=year, month=month, day=day)
    return int(moved.timestamp())


def two_years_after(moment: int) -> int:
    """The test-clock advance limit when the clock has no subscription."""
    return add_intervals(moment, "year", 2)


def describe_date(moment: int) -> str:
    """``"12 Mar 2026"``, as Stripe words proration line descriptions."""
    when = datetime.fromtimestamp(moment, UTC)
    return f"{when.day} {when.strftime('%b %Y')}"
