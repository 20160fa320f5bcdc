"""Meter values through ``GET /v1/meters/{key}/usage``: every aggregation, filters, group-by,
windows in a timezone, and the events a meter must leave out. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

JAN = {"from": "2026-01-01T00:00:00Z", "to": "2026-02-01T00:00:00Z"}


def send(api, events):
    r = api.post("/v1/events", json={"events": events})
    assert r.status_code == 202, r.text
    assert not r.json()["errors"], r.json()


def e(i, ts="2026-01-05T10:00:00Z", customer="acme", type_="api_call", **props):
    return {"id": f"e{i}", "customer": customer, "type": type_, "timestamp": ts, "properties": props}


def meter(api, key, aggregation, value_property=None, filters=(), group_by=(), event_type="api_call"):
    body = {
        "key": key,
        "event_type": event_type,
        "aggregation": aggregation,
        "value_property": value_property,
        "filters": list(filters),
        "group_by": list(group_by),
    }
    r = api.post("/v1/meters", json=body)
    assert r.status_code == 201, r.text


def usage(api, key, **params):
    r = api.get(f"/v1/meters/{key}/usage", params={"customer": "acme", **JAN, **params})
    assert r.status_code == 200, r.text
    return r.json()["data"]


def single(api, key, **params):
    rows = usage(api, key, **params)
    assert len(rows) == 1
    return rows[0]["value"]


@pytest.fixture
def traffic(api):
    send(
        api,
        [
            e(1, endpoint="/a", status=200, usage={"bytes": 100}, user="u1", amount=1.25),
            e(2, endpoint="/a", status=200, usage={"bytes": 250}, user="u2", amount="7"),
            e(3, endpoint="/b", status=503, usage={"bytes": 1000}, user="u1", amount=10),
            e(4, endpoint="/b", status=201, usage={"bytes": "lots"}, user="u3"),
            e(5, endpoint="/b", status=200, user="u1", amount=0.1),
            e(6, ts="2026-01-20T10:00:00Z", endpoint="/a", status=404, usage={"bytes": 50}, user=7, amount=0.2),
            e(7, endpoint="/a", status=200, usage={"bytes": 999}, customer="other"),
            e(8, endpoint="/a", status=200, usage={"bytes": 999}, type_="other_type"),
            e(9, ts="2026-02-01T00:00:00Z", endpoint="/a", status=200, usage={"bytes": 999}),  # outside [from, to)
            e(10, ts="2025-12-31T23:59:59.999999Z", endpoint="/a", status=200, usage={"bytes": 999}),
            e(11, endpoint="/c", status=200, usage={"bytes": True}, flag=True),
            e(12, endpoint="/c", status=200, usage={"bytes": None}, flag=False),
        ],
    )


def test_count_with_filter_and_group_by(api, traffic):
    meter(api, "calls", "count", filters=[{"property": "status", "op": "lt", "value": 500}], group_by=["endpoint"])
    # e3 (503) is filtered out; e7 (other customer), e8 (other type), e9, e10 (outside the range) never count
    assert single(api, "calls") == "7"
    rows = usage(api, "calls", group_by="endpoint")
    assert [(r["groups"]["endpoint"], r["value"]) for r in rows] == [("/a", "3"), ("/b", "2"), ("/c", "2")]


def test_sum_of_dotted_property_skips_missing_and_non_numeric(api, traffic):
    meter(api, "bytes", "sum", "usage.bytes", group_by=["endpoint", "status"])
    # 100 + 250 + 1000 + 50; "lots", true, null and missing are left out
    assert single(api, "bytes") == "1400"
    rows = usage(api, "bytes", group_by=["endpoint", "status"])
    got = {(r["groups"]["endpoint"], r["groups"]["status"]): r["value"] for r in rows}
    assert got == {("/a", "200"): "350", ("/a", "404"): "50", ("/b", "503"): "1000"}


def test_sum_is_exact_decimal(api, traffic):
    meter(api, "amount", "sum", "amount")
    # 1.25 + 10 + 0.1 + 0.2 (the string "7" is not a number): exact, no float drift
    assert single(api, "amount") == "11.55"


def test_max_min_latest(api, traffic):
    meter(api, "max_b", "max", "usage.bytes", filters=[{"property": "status", "op": "neq", "value": 503}])
    meter(api, "min_b", "min", "usage.bytes")
    meter(api, "last_b", "latest", "usage.bytes", group_by=["endpoint"])
    assert single(api, "max_b") == "250"
    assert single(api, "min_b") == "50"
    assert single(api, "last_b") == "50"  # e6 is the newest event with a numeric value
    rows = usage(api, "last_b", group_by="endpoint")
    assert {r["groups"]["endpoint"]: r["value"] for r in rows} == {"/a": "50", "/b": "1000"}


def test_latest_breaks_timestamp_ties_by_id(api):
    send(api, [e("a", v=1), e("b", v=2)])
    meter(api, "last", "latest", "v")
    assert single(api, "last") == "2"


def test_unique_count(api, traffic):
    meter(api, "users", "unique_count", "user", group_by=["endpoint"])
    assert single(api, "users") == "4"  # u1, u2, u3, 7
    rows = usage(api, "users", group_by="endpoint")
    assert {r["groups"]["endpoint"]: r["value"] for r in rows} == {
        "/a": "3",
        "/b": "2",
        "/c": "0",
    }  # /c has events, none with a user


def test_empty_range_gives_zero_for_counts_and_null_for_extremes(api):
    meter(api, "calls", "count")
    meter(api, "top", "max", "v")
    assert single(api, "calls") == "0"
    assert single(api, "top") is None
    assert usage(api, "calls", window="day", group_by=[]) and all(
        r["value"] == "0" for r in usage(api, "calls", window="day")
    )


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        ({"property": "status", "op": "eq", "value": 200}, "5"),
        ({"property": "status", "op": "neq", "value": 200}, "3"),
        ({"property": "status", "op": "in", "value": [201, 503]}, "2"),
        ({"property": "status", "op": "not_in", "value": [201, 503]}, "6"),
        ({"property": "status", "op": "gt", "value": 201}, "2"),
        ({"property": "status", "op": "gte", "value": 201}, "3"),
        ({"property": "status", "op": "lte", "value": 200}, "5"),
        ({"property": "endpoint", "op": "eq", "value": "/b"}, "3"),
        ({"property": "endpoint", "op": "in", "value": ["/a", "/c"]}, "5"),
        ({"property": "endpoint", "op": "gte", "value": "/b"}, "5"),
        ({"property": "usage.bytes", "op": "exists"}, "6"),  # a JSON null is not "exists"
        ({"property": "usage.bytes", "op": "exists", "value": False}, "2"),
        ({"property": "amount", "op": "exists", "value": True}, "5"),
        ({"property": "flag", "op": "eq", "value": True}, "1"),
        ({"property": "flag", "op": "neq", "value": True}, "7"),  # includes events without the flag
        ({"property": "user", "op": "eq", "value": 7}, "1"),
        ({"property": "user", "op": "eq", "value": "7"}, "0"),
        ({"property": "status", "op": "eq", "value": "200"}, "0"),
    ],
)
def test_filter_ops(api, traffic, flt, expected):
    meter(api, "m", "count", filters=[flt])
    assert single(api, "m") == expected


def test_several_filters_are_anded(api, traffic):
    meter(
        api,
        "m",
        "sum",
        "usage.bytes",
        filters=[{"property": "endpoint", "op": "eq", "value": "/a"}, {"property": "status", "op": "lt", "value": 300}],
    )
    assert single(api, "m") == "350"


def test_without_customer_all_customers_count(api, traffic):
    meter(api, "calls", "count")
    r = api.get("/v1/meters/calls/usage", params=JAN).json()
    assert r["data"][0]["value"] == "9"  # e7 of customer "other" too


def test_daily_windows_in_a_timezone(api):
    # 23:30 UTC on Jan 4 is already Jan 5 in Rome.
    send(api, [e(1, ts="2026-01-04T22:30:00Z"), e(2, ts="2026-01-04T23:30:00Z"), e(3, ts="2026-01-05T12:00:00Z")])
    meter(api, "calls", "count")
    params = {"from": "2026-01-04T00:00:00Z", "to": "2026-01-06T00:00:00Z", "window": "day"}
    utc = usage(api, "calls", **params, tz="UTC")
    assert [(r["from"], r["value"]) for r in utc] == [("2026-01-04T00:00:00Z", "2"), ("2026-01-05T00:00:00Z", "1")]
    rome = usage(api, "calls", **params, tz="Europe/Rome")
    assert [(r["from"], r["to"], r["value"]) for r in rome] == [
        ("2026-01-04T00:00:00Z", "2026-01-04T23:00:00Z", "1"),
        ("2026-01-04T23:00:00Z", "2026-01-05T23:00:00Z", "2"),
        ("2026-01-05T23:00:00Z", "2026-01-06T00:00:00Z", "0"),
    ]


def test_dst_day_in_rome_is_23_hours(api):
    # 2026-03-29: clocks jump from 02:00 to 03:00 in Rome. The local day runs 22:00Z Mar 28 → 22:00Z Mar 29.
    send(
        api,
        [
            e(1, ts="2026-03-28T22:30:00Z"),  # 23:30 CET on the 28th: before the range
            e(2, ts="2026-03-28T23:30:00Z"),  # 00:30 CET on the 29th
            e(3, ts="2026-03-29T21:59:59Z"),  # 23:59:59 CEST on the 29th
            e(4, ts="2026-03-29T22:00:00Z"),  # 00:00 CEST on the 30th
        ],
    )
    meter(api, "calls", "count")
    rows = usage(
        api, "calls", **{"from": "2026-03-28T23:00:00Z", "to": "2026-03-30T22:00:00Z"}, window="day", tz="Europe/Rome"
    )
    assert [(r["from"], r["to"], r["value"]) for r in rows] == [
        ("2026-03-28T23:00:00Z", "2026-03-29T22:00:00Z", "2"),
        ("2026-03-29T22:00:00Z", "2026-03-30T22:00:00Z", "1"),
    ]


def test_hour_and_month_windows_with_group_by(api):
    send(
        api,
        [
            e(1, ts="2026-01-05T10:15:00Z", endpoint="/a"),
            e(2, ts="2026-01-05T10:45:00Z", endpoint="/a"),
            e(3, ts="2026-01-05T11:00:00Z", endpoint="/b"),
            e(4, ts="2026-02-05T11:00:00Z", endpoint="/b"),
        ],
    )
    meter(api, "calls", "count", group_by=["endpoint"])
    hours = usage(
        api,
        "calls",
        **{"from": "2026-01-05T10:00:00Z", "to": "2026-01-05T12:00:00Z"},
        window="hour",
        group_by="endpoint",
    )
    assert [(r["from"], r["groups"]["endpoint"], r["value"]) for r in hours] == [
        ("2026-01-05T10:00:00Z", "/a", "2"),
        ("2026-01-05T11:00:00Z", "/b", "1"),
    ]
    months = usage(api, "calls", **{"from": "2026-01-01T00:00:00Z", "to": "2026-03-01T00:00:00Z"}, window="month")
    assert [r["value"] for r in months] == ["3", "1"]


def test_voided_events_stop_counting(api, traffic):
    meter(api, "calls", "count")
    assert single(api, "calls") == "8"
    r = api.post("/v1/events/e1/void")
    assert r.status_code == 200 and r.json()["voided_at"]
    assert api.post("/v1/events/e1/void").json()["voided_at"] == r.json()["voided_at"]  # idempotent
    assert single(api, "calls") == "7"
    assert api.post("/v1/events/nope/void").status_code == 404


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "2026-01-05"}, "from"),
        ({"to": "soon"}, "to"),
        ({"from": "2026-02-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, "to"),
        ({"window": "week"}, "window"),
        ({"tz": "Nowhere/City"}, "tz"),
        ({"group_by": "status"}, "group_by"),
        ({"window": "hour", "from": "2000-01-01T00:00:00Z"}, "window"),
    ],
)
def test_bad_usage_queries_name_the_field(api, params, field):
    meter(api, "calls", "count", group_by=["endpoint"])
    r = api.get("/v1/meters/calls/usage", params={**JAN, **params})
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == field


def test_usage_of_unknown_meter_is_404(api):
    assert api.get("/v1/meters/nope/usage", params=JAN).status_code == 404


def test_tz_defaults_to_the_customers_timezone(api):
    api.post("/v1/customers", json={"id": "acme", "timezone": "Asia/Tokyo"})
    meter(api, "calls", "count")
    r = api.get("/v1/meters/calls/usage", params={"customer": "acme", "to": "2026-01-10T00:00:00Z"}).json()
    assert r["tz"] == "Asia/Tokyo"
    assert r["data"][0]["from"] == "2025-12-31T15:00:00Z"  # Jan 1st 00:00 in Tokyo
