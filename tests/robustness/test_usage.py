"""Usage queries at the ends of the calendar (years 1 and 9999, in any time zone) and with
values past 28 significant digits. Each was a 500."""

from __future__ import annotations

import itertools

import pytest

from tests.factories import problem

URL = "/v1/meters/m/usage"


@pytest.fixture
def meter(api):
    body = {"key": "m", "event_type": "api_call", "aggregation": "sum", "value_property": "v", "group_by": ["g"]}
    assert api.post("/v1/meters", json=body).status_code == 201


def send(api, *events):
    r = api.post(
        "/v1/events",
        json={
            "events": [
                {
                    "id": f"e{i}",
                    "customer": "acme",
                    "type": "api_call",
                    "timestamp": ts,
                    "properties": {"v": v, "g": "x"},
                }
                for i, (ts, v) in enumerate(events)
            ]
        },
    )
    assert r.status_code == 202 and r.json()["accepted"] == len(events), r.text


WINDOWS = [None, "hour", "day", "month"]


def test_up_to_the_last_instant_of_year_9999(api, meter):
    send(api, ("9999-12-31T23:59:59.999999Z", 7), ("9999-12-31T12:00:00Z", 1))
    for tz in ("UTC", "America/New_York", "Pacific/Kiritimati", "Asia/Kolkata"):
        for window in WINDOWS:
            params = {"customer": "acme", "from": "9999-12-30T00:00:00Z", "to": "9999-12-31T23:59:59.999999Z", "tz": tz}
            if window:
                params["window"] = window
            r = api.get(URL, params=params)
            assert r.status_code == 200, (tz, window, r.text)
            rows = r.json()["data"]
            assert rows[0]["from"] == "9999-12-30T00:00:00Z"
            assert rows[-1]["to"] == "9999-12-31T23:59:59.999999Z"
            for a, b in itertools.pairwise(rows):
                assert a["to"] == b["from"]
            assert sum(int(r["value"]) for r in rows) == 1  # [from, to) excludes the event at `to`


def test_from_the_first_instant_of_year_1(api, meter):
    send(api, ("0001-01-01T00:00:00Z", 2), ("0001-01-02T05:00:00Z", 3))
    for tz in ("UTC", "America/New_York", "Asia/Tokyo", "Etc/GMT+12"):
        for window in WINDOWS:
            params = {"customer": "acme", "from": "0001-01-01T00:00:00Z", "to": "0001-01-03T00:00:00Z", "tz": tz}
            if window:
                params["window"] = window
            r = api.get(URL, params=params)
            assert r.status_code == 200, (tz, window, r.text)
            rows = r.json()["data"]
            assert rows[0]["from"] == "0001-01-01T00:00:00Z"
            assert rows[-1]["to"] == "0001-01-03T00:00:00Z"
            assert sum(int(r["value"]) for r in rows) == 5


def test_day_windows_in_year_1_align_to_local_midnight(api, meter):
    # New York before 1883 keeps local mean time, UTC-4:56:02: its first midnight of year 1 is
    # at 04:56:02Z (the window holding `from` starts in year 0 and is clipped to `from`).
    r = api.get(
        URL,
        params={
            "from": "0001-01-01T00:00:00Z",
            "to": "0001-01-02T12:00:00Z",
            "window": "day",
            "tz": "America/New_York",
        },
    )
    assert r.status_code == 200, r.text
    assert [(w["from"], w["to"]) for w in r.json()["data"]] == [
        ("0001-01-01T00:00:00Z", "0001-01-01T04:56:02Z"),
        ("0001-01-01T04:56:02Z", "0001-01-02T04:56:02Z"),
        ("0001-01-02T04:56:02Z", "0001-01-02T12:00:00Z"),
    ]


def test_the_whole_calendar_in_one_row(api, meter):
    send(api, ("0001-01-01T00:00:00Z", 1), ("2026-01-05T10:00:00Z", 2), ("9999-12-31T23:00:00Z", 4))
    r = api.get(URL, params={"from": "0001-01-01T00:00:00Z", "to": "9999-12-31T23:59:59.999999Z"})
    assert r.status_code == 200, r.text
    assert r.json()["data"][0]["value"] == "7"
    problem(
        api.get(URL, params={"from": "0001-01-01T00:00:00Z", "to": "9999-12-31T23:59:59Z", "window": "month"}),
        422,
        "window",
    )


def test_default_from_in_the_first_month_of_year_1(api, meter):
    # 03:00Z is still December of year 0 in New York: its month began before year 1, so the
    # default `from` is the first instant there is.
    r = api.get(URL, params={"to": "0001-01-01T03:00:00Z", "tz": "America/New_York"})
    assert r.status_code == 200, r.text
    assert r.json()["data"][0]["from"] == "0001-01-01T00:00:00Z"
    r = api.get(URL, params={"to": "0001-01-01T10:00:00Z", "tz": "America/New_York"})
    assert r.json()["data"][0]["from"] == "0001-01-01T04:56:02Z"


def test_bounds_outside_the_calendar_are_422(api, meter):
    for name, value in [
        ("from", "0001-01-01T00:00:00+01:00"),
        ("to", "9999-12-31T23:59:59-01:00"),
        ("from", "0000-01-01T00:00:00Z"),
    ]:
        problem(api.get(URL, params={name: value}), 422, name)


def test_sum_beyond_28_digits_is_written_out(api, meter):
    send(
        api,
        ("2026-01-05T10:00:00Z", 10**30),
        ("2026-01-05T10:30:00Z", 10**30),
        ("2026-01-05T11:00:00Z", 1e300),
        ("2026-01-05T11:30:00Z", 1e300),
    )
    r = api.get(URL, params={"from": "2026-01-05T00:00:00Z", "to": "2026-01-05T11:00:00Z"})
    assert r.status_code == 200, r.text
    assert r.json()["data"][0]["value"] == "2" + "0" * 30
    r = api.get(URL, params={"from": "2026-01-05T11:00:00Z", "to": "2026-01-05T12:00:00Z", "window": "hour"})
    assert r.status_code == 200, r.text
    assert r.json()["data"][0]["value"] == "2" + "0" * 300
