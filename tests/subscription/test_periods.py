"""Billing periods: calendar/anniversary anchors, time zones, clamping, and exact tiling."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tollway.kit.periods import BillingCycle, add_months, days_between, local_midnight_after_days

NY = ZoneInfo("America/New_York")
UTCZ = ZoneInfo("UTC")
ZONES = [
    ZoneInfo(z) for z in ("UTC", "America/New_York", "Europe/Rome", "Asia/Tokyo", "Australia/Lord_Howe", "Asia/Kolkata")
]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_calendar_month_in_new_york_follows_dst() -> None:
    cycle = BillingCycle("month", 1, "calendar", NY)
    start = utc(2026, 1, 1, 5)  # 2026-01-01 00:00 EST
    p = [cycle.period(start, k) for k in range(4)]
    assert p[0].start == utc(2026, 1, 1, 5) and p[0].end == utc(2026, 2, 1, 5)
    assert p[2].start == utc(2026, 3, 1, 5)  # still EST on March 1st
    assert p[3].start == utc(2026, 4, 1, 4)  # EDT after the second Sunday of March: 04:00Z
    assert cycle.days_in(p[1]) == 28


def test_calendar_mid_month_start_has_short_first_period() -> None:
    cycle = BillingCycle("month", 1, "calendar", UTCZ)
    start = utc(2026, 1, 10)
    first = cycle.period(start, 0)
    assert (first.start, first.end) == (start, utc(2026, 2, 1))
    assert days_between(first.start, first.end, UTCZ) == 22
    assert cycle.days_in(first) == 31
    assert cycle.period(start, 1).end == utc(2026, 3, 1)


def test_anniversary_on_the_31st_clamps_and_comes_back() -> None:
    cycle = BillingCycle("month", 1, "anniversary", UTCZ)
    start = utc(2026, 1, 31, 12)
    starts = [cycle.boundary(start, k) for k in range(5)]
    assert starts == [
        utc(2026, 1, 31, 12),
        utc(2026, 2, 28, 12),
        utc(2026, 3, 31, 12),
        utc(2026, 4, 30, 12),
        utc(2026, 5, 31, 12),
    ]
    leap = [cycle.boundary(utc(2028, 1, 31), k) for k in (1, 2)]
    assert leap == [utc(2028, 2, 29), utc(2028, 3, 31)]


def test_weekly_calendar_starts_on_monday_and_quarterly_counts() -> None:
    week = BillingCycle("week", 1, "calendar", UTCZ)
    p = week.period(utc(2026, 1, 7), 0)  # a Wednesday
    assert p.end == utc(2026, 1, 12) and p.end.weekday() == 0
    quarter = BillingCycle("month", 3, "calendar", UTCZ)
    assert quarter.period(utc(2026, 1, 1), 1).start == utc(2026, 4, 1)
    yearly = BillingCycle("year", 1, "anniversary", UTCZ)
    assert yearly.boundary(utc(2024, 2, 29), 1) == utc(2025, 2, 28)
    assert yearly.boundary(utc(2024, 2, 29), 4) == utc(2028, 2, 29)


def test_tokyo_day_periods_start_at_15z() -> None:
    cycle = BillingCycle("day", 1, "calendar", ZoneInfo("Asia/Tokyo"))
    p = cycle.period_at(utc(2026, 1, 1), utc(2026, 1, 5, 16))
    assert p.start == utc(2026, 1, 5, 15) and p.end == utc(2026, 1, 6, 15)


def test_periods_ending_by_and_index_at() -> None:
    cycle = BillingCycle("month", 1, "calendar", UTCZ)
    start = utc(2026, 1, 10)
    ended = cycle.periods_ending_by(start, utc(2026, 3, 1))
    assert [(p.start, p.end) for p in ended] == [(start, utc(2026, 2, 1)), (utc(2026, 2, 1), utc(2026, 3, 1))]
    assert cycle.periods_ending_by(start, utc(2026, 3, 1), after=utc(2026, 2, 1))[0].index == 1
    assert cycle.index_at(start, utc(2026, 2, 28, 23, 59)) == 1
    with pytest.raises(ValueError):
        cycle.index_at(start, utc(2026, 1, 1))


def test_free_window_and_day_counting() -> None:
    assert local_midnight_after_days(utc(2026, 1, 10, 15), 14, NY) == utc(2026, 1, 24, 5)
    assert local_midnight_after_days(utc(2026, 1, 10, 15), 0, NY) == utc(2026, 1, 10, 15)
    # The DST day (23 h) counts as one day.
    assert days_between(utc(2026, 3, 8, 5), utc(2026, 3, 9, 4), NY) == 1
    assert add_months(datetime(2026, 1, 31), 1) == datetime(2026, 2, 28)


def test_invalid_cycles_are_refused() -> None:
    with pytest.raises(ValueError):
        BillingCycle("fortnight", 1, "calendar", UTCZ)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        BillingCycle("month", 0, "calendar", UTCZ)
    with pytest.raises(ValueError):
        BillingCycle("month", 1, "calendar", UTCZ).boundary(datetime(2026, 1, 1), 1)


starts = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC))


@settings(max_examples=150, deadline=None)
@given(
    start=starts,
    interval=st.sampled_from(["day", "week", "month", "year"]),
    count=st.integers(1, 4),
    anchor=st.sampled_from(["calendar", "anniversary"]),
    zone=st.sampled_from(ZONES),
    n=st.integers(1, 14),
)
def test_consecutive_periods_tile_time_exactly(
    start: datetime, interval: str, count: int, anchor: str, zone: ZoneInfo, n: int
) -> None:
    cycle = BillingCycle(interval, count, anchor, zone)  # type: ignore[arg-type]
    periods = [cycle.period(start, k) for k in range(n)]
    assert periods[0].start == start
    for a, b in itertools.pairwise(periods):
        assert a.end == b.start  # no gap, no overlap
    for p in periods:
        assert p.start < p.end
        # the period found for any instant in it is that period (no instant in two periods or none)
        for instant in (p.start, p.end - timedelta(microseconds=1), p.start + (p.end - p.start) / 2):
            assert cycle.period_at(start, instant) == p
        assert 1 <= days_between(p.start, p.end, zone) <= cycle.days_in(p)


@settings(max_examples=100, deadline=None)
@given(start=starts, zone=st.sampled_from(ZONES))
def test_calendar_months_start_at_local_midnight_on_the_first(start: datetime, zone: ZoneInfo) -> None:
    cycle = BillingCycle("month", 1, "calendar", zone)
    for k in (1, 2, 7):
        local = cycle.boundary(start, k).astimezone(zone)
        assert local.day == 1
        assert (local.hour, local.minute) == (0, 0) or zone.key == "Australia/Lord_Howe"
