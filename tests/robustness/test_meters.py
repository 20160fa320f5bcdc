"""Meter definitions that were accepted and then broke queries or ingestion."""

from __future__ import annotations

from tests.factories import problem
from tollway.meter import fold


def test_in_filter_with_many_values_counts(api, session_factory):
    values = list(range(1500))
    meter = {
        "key": "ok_calls",
        "event_type": "api_call",
        "aggregation": "count",
        "filters": [
            {"property": "status", "op": "in", "value": values},
            {"property": "kind", "op": "not_in", "value": ["x", "x"] + [f"k{i}" for i in range(1500)]},
        ],
    }
    r = api.post("/v1/meters", json=meter)
    assert r.status_code == 201, r.text
    events = [
        {
            "id": f"e{i}",
            "customer": "acme",
            "type": "api_call",
            "timestamp": "2026-01-05T10:00:00Z",
            "properties": {"status": status, "kind": kind},
        }
        for i, (status, kind) in enumerate([(200, "a"), (1499, None), (1500, "a"), ("200", "a"), (404, "k3"), (5, "x")])
    ]
    assert api.post("/v1/events", json={"events": events}).json()["accepted"] == 6
    usage = api.get(
        "/v1/meters/ok_calls/usage",
        params={"customer": "acme", "from": "2026-01-05T00:00:00Z", "to": "2026-01-06T00:00:00Z"},
    )
    assert usage.status_code == 200, usage.text
    # 200 and 1499 match; 1500 is not listed, "200" is a string, k3 and x are excluded.
    assert usage.json()["data"][0]["value"] == "2"
    # The same meter once the worker has rolled the events up: whole hours from the rollups.
    with session_factory() as session:
        assert fold.apply_pending(session) == 6
        session.commit()
    usage = api.get(
        "/v1/meters/ok_calls/usage",
        params={"customer": "acme", "from": "2026-01-05T09:30:00Z", "to": "2026-01-05T11:30:00Z"},
    )
    assert usage.json()["data"][0]["value"] == "2"


def test_in_filter_list_has_a_limit(api):
    meter = {
        "key": "m",
        "event_type": "t",
        "aggregation": "count",
        "filters": [{"property": "p", "op": "in", "value": list(range(10_001))}],
    }
    problem(api.post("/v1/meters", json=meter), 422, "filters[0].value")


def test_huge_but_finite_filter_value_keeps_ingestion_working(api):
    meter = {
        "key": "m",
        "event_type": "api_call",
        "aggregation": "count",
        "filters": [{"property": "bytes", "op": "lt", "value": 10**30}],
    }
    r = api.post("/v1/meters", json=meter)
    assert r.status_code == 201, r.text
    r = api.post(
        "/v1/events",
        json={
            "id": "e1",
            "customer": "acme",
            "type": "api_call",
            "timestamp": "2026-01-05T10:00:00Z",
            "properties": {"bytes": 5},
        },
    )
    assert r.status_code == 202, r.text
    usage = api.get("/v1/meters/m/usage", params={"from": "2026-01-05T00:00:00Z", "to": "2026-01-06T00:00:00Z"})
    assert usage.json()["data"][0]["value"] == "1"
