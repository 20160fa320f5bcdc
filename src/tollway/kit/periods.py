"""Billing periods: pure calendar arithmetic in the customer's time zone.

A :class:`BillingCycle` says how a subscription's time is cut into periods: every
``interval_count`` days, weeks, months or years, anchored either on the calendar (periods start
at local midnight on the 1st of the month, on Monday, on January 1st...) or on the
subscription's anniversary (the same local wall-clock time on the same day of the month as the
start; a start on the 31st falls on the last day of shorter months and comes back to the 31st).

Periods are half-open ``[start, end)`` in UTC: the end of one period is the start of the next,
so consecutive periods tile time exactly and every instant (every event) falls in one period.
Boundaries are computed from the anchor and the period's index (never by adding to the previous
boundary), so clamping a day or a DST shift never drifts.

A calendar-anchored subscription that starts mid-period has a short first period
``[start, next calendar boundary)``; recurring fees are prorated by :func:`days_between`.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from tollway.kit.time import localize

__all__ = [
    "Anchor",
    "BillingCycle",
    "Interval",
    "Period",
    "add_months",
    "days_between",
    "local_midnight_after_days",
]

Interval = Literal["day", "week", "month", "year"]
Anchor = Literal["calendar", "anniversary"]

INTERVALS: tuple[Interval, ...] = ("day", "week", "month", "year")
ANCHORS: tuple[Anchor, ...] = ("calendar", "anniversary")


@dataclass(frozen=True, slots=True)
class Period:
    """A half-open billing period ``[start, end)`` in UTC; ``index`` 0 is the first one."""

    index: int
    start: datetime
    end: datetime

    def contains(self, instant: datetime) -> bool:
        return self.start <= instant < self.end


def _require_aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime")


def _local(instant: datetime, tz: ZoneInfo) -> datetime:
    return instant.astimezone(tz).replace(tzinfo=None)


def add_months(naive: datetime, months: int, day: int | None = None) -> datetime:
    """``naive`` moved by ``months`` calendar months on day ``day`` (default: its own day),
    clamped to the last day of the target month (Jan 31 + 1 month = Feb 28 or 29)."""
    total = naive.year * 12 + (naive.month - 1) + months
    year, month = divmod(total, 12)
    month += 1
    wanted = naive.day if day is None else day
    last = calendar.monthrange(year, month)[1]
    return naive.replace(year=year, month=month, day=min(wanted, last))


def days_between(start: datetime, end: datetime, tz: ZoneInfo) -> int:
    """Days from ``start`` to ``end`` counted on the local wall clock of ``tz``; a started day
    counts whole (a DST day of 23 or 25 hours is still one day)."""
    if end <= start:
        return 0
    delta = _local(end, tz) - _local(start, tz)
    return delta.days + (1 if delta.seconds or delta.microseconds else 0)


def local_midnight_after_days(start: datetime, days: int, tz: ZoneInfo) -> datetime:
    """The local midnight ``days`` days after the local date of ``start`` (``days`` >= 1), or
    ``start`` itself when ``days`` is 0: the end of a free window of ``days`` days."""
    if days <= 0:
        return start
    local = _local(start, tz)
    day0 = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return localize(day0 + timedelta(days=days), tz)


@dataclass(frozen=True, slots=True)
class BillingCycle:
    """How a subscription's time is cut into periods (see the module docstring)."""

    interval: Interval
    interval_count: int
    anchor: Anchor
    tz: ZoneInfo

    def __post_init__(self) -> None:
        if self.interval not in INTERVALS:
            raise ValueError(f"interval must be one of {', '.join(INTERVALS)}")
        if self.anchor not in ANCHORS:
            raise ValueError(f"anchor must be one of {', '.join(ANCHORS)}")
        if isinstance(self.interval_count, bool) or not isinstance(self.interval_count, int):
            raise TypeError("interval_count must be an int")
        if not 1 <= self.interval_count <= 1000:
            raise ValueError("interval_count must be between 1 and 1000")

    # -- the anchor ------------------------------------------------------------------------
    def _anchor_local(self, start: datetime) -> datetime:
        """The local wall-clock instant boundaries are counted from."""
        local = _local(start, self.tz)
        if self.anchor == "anniversary":
            return local
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        if self.interval == "day":
            return midnight
        if self.interval == "week":
            return midnight - timedelta(days=midnight.weekday())
        if self.interval == "month":
            return midnight.replace(day=1)
        return midnight.replace(month=1, day=1)

    def _step_local(self, anchor: datetime, steps: int) -> datetime:
        n = steps * self.interval_count
        if self.interval == "day":
            return anchor + timedelta(days=n)
        if self.interval == "week":
            return anchor + timedelta(weeks=n)
        if self.interval == "month":
            return add_months(anchor, n)
        return add_months(anchor, 12 * n)

    def boundary(self, start: datetime, k: int) -> datetime:
        """The start of period ``k`` (UTC) of a subscription that started at ``start``."""
        _require_aware(start, "start")
        if k <= 0:
            return start.astimezone(UTC)
        return localize(self._step_local(self._anchor_local(start), k), self.tz)

    def period(self, start: datetime, k: int) -> Period:
        """Period number ``k`` (0-based)."""
        if k < 0:
            raise ValueError("period index must not be negative")
        return Period(k, self.boundary(start, k), self.boundary(start, k + 1))

    def _estimate(self, start: datetime, instant: datetime) -> int:
        a = self._anchor_local(start)
        b = _local(instant, self.tz)
        if self.interval in ("day", "week"):
            unit = 1 if self.interval == "day" else 7
            return (b.date() - a.date()).days // (unit * self.interval_count)
        months = (b.year - a.year) * 12 + (b.month - a.month)
        per = self.interval_count * (12 if self.interval == "year" else 1)
        return months // per

    def index_at(self, start: datetime, instant: datetime) -> int:
        """The index of the period containing ``instant`` (``instant`` >= ``start``)."""
        _require_aware(start, "start")
        _require_aware(instant, "instant")
        if instant < start:
            raise ValueError("instant is before the subscription start")
        k = max(self._estimate(start, instant), 0)
        while k > 0 and self.boundary(start, k) > instant:
            k -= 1
        while self.boundary(start, k + 1) <= instant:
            k += 1
        return k

    def period_at(self, start: datetime, instant: datetime) -> Period:
        """The period containing ``instant``."""
        return self.period(start, self.index_at(start, instant))

    def periods_ending_by(self, start: datetime, until: datetime, *, after: datetime | None = None) -> list[Period]:
        """Every period that ends at or before ``until`` and starts at or after ``after``."""
        out: list[Period] = []
        if until <= start:
            return out
        k = 0 if after is None or after <= start else self.index_at(start, after)
        while True:
            p = self.period(start, k)
            if p.end > until:
                return out
            if after is None or p.start >= after:
                out.append(p)
            k += 1

    def days_in(self, period: Period) -> int:
        """The period's length in local days (for proration). The short first period of a
        calendar-anchored subscription counts as the full calendar period it belongs to."""
        if self.anchor == "calendar" and period.index == 0:
            anchor = localize(self._anchor_local(period.start), self.tz)
            return days_between(anchor, period.end, self.tz)
        return days_between(period.start, period.end, self.tz)
