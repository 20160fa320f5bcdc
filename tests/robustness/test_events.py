"""Event ingestion edge cases found by fuzzing: timestamps at the ends of the calendar, deeply
nested properties."""

from __future__ import annotations

import pytest

from tests.factories import JSON, nested, problem


def ev(i: str, **kw):
    return {"id": i, "customer": "acme", "type": "api_call", **kw}


@pytest.mark.parametrize(
    "ts",
    [
        "0001-01-01T00:00:00+01:00",  # 0000-12-31T23:00Z: before year 1
        "9999-12-31T23:59:59-01:00",  # 10000-01-01T00:59:59Z: after year 9999
        "0000-01-01T00:00:00Z",
        "10000-01-01T00:00:00Z",
    ],
)
def test_timestamp_outside_the_calendar(api, ts):
    body = problem(api.post("/v1/events", json=ev("e1", timestamp=ts)), 422, "timestamp")
    assert "RFC 3339" in body["errors"][0]["message"] or "range" in body["errors"][0]["message"]
    r = api.post("/v1/events", json={"events": [ev("e2", timestamp=ts), ev("e3")]})
    assert r.status_code == 202, r.text
    assert r.json()["accepted"] == 1 and r.json()["errors"][0]["field"] == "events[0].timestamp"


@pytest.mark.parametrize("ts", ["9999-12-31T23:59:59.999999Z", "9999-12-31T23:00:00Z", "0001-01-01T00:00:00Z"])
def test_event_at_the_ends_of_the_calendar_is_stored_voided_and_read(api, ts):
    body = {"key": "calls", "event_type": "api_call", "aggregation": "count"}
    assert api.post("/v1/meters", json=body).status_code == 201
    assert api.post("/v1/events", json=ev("edge", timestamp=ts)).status_code == 202
    got = api.get("/v1/events/edge")
    assert got.status_code == 200, got.text
    r = api.post("/v1/events/edge/void")
    assert r.status_code == 200, r.text
    assert r.json()["voided_at"] is not None


@pytest.mark.parametrize("depth", [33, 256, 1000])
def test_properties_nested_too_deep(api, depth):
    raw = '{"id":"deep","customer":"acme","type":"api_call","properties":' + nested(depth) + "}"
    problem(api.post("/v1/events", content=raw, headers=JSON), 422, "properties")
    raw_batch = '{"events":[{"id":"ok","customer":"acme","type":"t"},' + raw + "]}"
    r = api.post("/v1/events", content=raw_batch, headers=JSON)
    assert r.status_code == 202, r.text
    assert r.json()["accepted"] == 1
    assert r.json()["errors"][0]["field"] == "events[1].properties"
    assert api.get("/v1/events/deep").status_code == 404


def test_properties_nested_within_the_limit_round_trip(api):
    raw = '{"id":"deep","customer":"acme","type":"api_call","properties":' + nested(32, '"x"') + "}"
    assert api.post("/v1/events", content=raw, headers=JSON).status_code == 202
    got = api.get("/v1/events/deep")
    assert got.status_code == 200, got.text
    doc = got.json()["properties"]
    for _ in range(32):
        doc = doc["a"]
    assert doc == "x"


def test_cloudevent_time_outside_the_calendar(api):
    ce = {
        "specversion": "1.0",
        "id": "c1",
        "source": "s",
        "type": "api_call",
        "subject": "acme",
        "time": "9999-12-31T23:59:59-01:00",
    }
    r = api.post("/v1/events", json=ce, headers={"content-type": "application/cloudevents+json"})
    problem(r, 422, "time")
