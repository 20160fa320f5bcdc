from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tollway.kit.time import get_zone, parse_rfc3339, windows


def dt(*a: int) -> datetime:
    return datetime(*a, tzinfo=UTC)


def test_rome_day_in_late_march_is_23_hours():
    # Italy moves to CEST on the last Sunday of March: 2026-03-29 has 23 hours.
    rome = get_zone("Europe/Rome")
    ws = windows(dt(2026, 3, 28, 23), dt(2026, 3, 30, 22), "day", rome)
    assert ws == [
        (dt(2026, 3, 28, 23), dt(2026, 3, 29, 22)),
        (dt(2026, 3, 29, 22), dt(2026, 3, 30, 22)),
    ]
    assert ws[0][1] - ws[0][0] == timedelta(hours=23)
    assert ws[1][1] - ws[1][0] == timedelta(hours=24)


def test_rome_day_in_late_october_is_25_hours():
    rome = get_zone("Europe/Rome")
    ((a, b),) = windows(dt(2026, 10, 24, 22), dt(2026, 10, 25, 23), "day", rome)
    assert b - a == timedelta(hours=25)


def test_new_york_months_start_at_5_or_4_utc():
    ny = get_zone("America/New_York")
    ws = windows(dt(2026, 1, 1, 5), dt(2026, 5, 1, 4), "month", ny)
    assert [a for a, _ in ws] == [dt(2026, 1, 1, 5), dt(2026, 2, 1, 5), dt(2026, 3, 1, 5), dt(2026, 4, 1, 4)]


def test_windows_are_clipped_to_the_range():
    ws = windows(dt(2026, 1, 1, 10, 30), dt(2026, 1, 1, 12, 15), "hour", get_zone("UTC"))
    assert ws == [
        (dt(2026, 1, 1, 10, 30), dt(2026, 1, 1, 11)),
        (dt(2026, 1, 1, 11), dt(2026, 1, 1, 12)),
        (dt(2026, 1, 1, 12), dt(2026, 1, 1, 12, 15)),
    ]


def test_hour_windows_in_a_half_hour_zone_align_to_local_hours():
    kolkata = get_zone("Asia/Kolkata")
    ws = windows(dt(2026, 1, 1, 0, 30), dt(2026, 1, 1, 2, 30), "hour", kolkata)
    assert ws == [(dt(2026, 1, 1, 0, 30), dt(2026, 1, 1, 1, 30)), (dt(2026, 1, 1, 1, 30), dt(2026, 1, 1, 2, 30))]


def test_too_many_windows_is_refused():
    with pytest.raises(ValueError, match="windows"):
        windows(dt(2000, 1, 1), dt(2026, 1, 1), "hour", get_zone("UTC"), max_windows=1000)


ZONES = ["UTC", "Europe/Rome", "America/New_York", "Asia/Tokyo", "Asia/Kolkata", "Australia/Lord_Howe", "Pacific/Apia"]


@given(
    start=st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1)),
    length_hours=st.integers(min_value=1, max_value=24 * 120),
    window=st.sampled_from(["hour", "day", "month"]),
    zone=st.sampled_from(ZONES),
)
def test_windows_tile_the_range_exactly(start, length_hours, window, zone):
    a = start.replace(tzinfo=UTC)
    b = a + timedelta(hours=length_hours)
    ws = windows(a, b, window, get_zone(zone), max_windows=100_000)
    assert ws[0][0] == a and ws[-1][1] == b
    for (x0, x1), (y0, _) in pairwise(ws):
        assert x1 == y0 and x0 < x1
    if window == "day":
        tz = get_zone(zone)
        for x0, _ in ws[1:]:
            # local midnight, or the first instant after it where midnight falls in a DST gap
            assert x0.astimezone(tz).time() <= time(1, 0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-05T10:00:00Z", dt(2026, 1, 5, 10)),
        ("2026-01-05T11:00:00+01:00", dt(2026, 1, 5, 10)),
        ("2026-01-05T10:00:00.123456789Z", dt(2026, 1, 5, 10, 0, 0, 123456)),
        ("2026-01-05t10:00:00z", dt(2026, 1, 5, 10)),
    ],
)
def test_parse_rfc3339(text, expected):
    assert parse_rfc3339(text) == expected


@pytest.mark.parametrize(
    "text", ["2026-01-05T10:00:00", "2026-01-05", "yesterday", "2026-13-05T10:00:00Z", "2026-01-05T10:00Z", ""]
)
def test_parse_rfc3339_rejects(text):
    with pytest.raises(ValueError):
        parse_rfc3339(text)
