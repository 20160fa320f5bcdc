from __future__ import annotations

import pytest

from tollway.meter.service import MUTATION_GUARDS, register_mutation_guard

API_CALLS = {
    "key": "api_calls",
    "name": "API calls",
    "event_type": "api_call",
    "aggregation": "count",
    "value_property": None,
    "filters": [{"property": "status", "op": "lt", "value": 500}],
    "group_by": ["endpoint"],
}


def test_create_get_list_update(api):
    r = api.post("/v1/meters", json=API_CALLS)
    assert r.status_code == 201, r.text
    assert r.json()["filters"] == [{"property": "status", "op": "lt", "value": 500}]
    assert api.get("/v1/meters/api_calls").json()["group_by"] == ["endpoint"]
    api.post(
        "/v1/meters",
        json={"key": "bytes", "event_type": "api_call", "aggregation": "sum", "value_property": "usage.bytes"},
    )
    page = api.get("/v1/meters", params={"limit": 1}).json()
    assert [m["key"] for m in page["data"]] == ["api_calls"] and page["next"]
    page2 = api.get("/v1/meters", params={"limit": 1, "after": page["next"]}).json()
    assert [m["key"] for m in page2["data"]] == ["bytes"] and page2["next"] is None
    r = api.patch("/v1/meters/api_calls", json={"name": "Calls", "filters": []})
    assert r.status_code == 200 and r.json()["name"] == "Calls" and r.json()["filters"] == []
    assert api.post("/v1/meters", json=API_CALLS).status_code == 409
    assert api.get("/v1/meters/nope").status_code == 404


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"aggregation": "sum", "value_property": None}, "body"),
        ({"aggregation": "median"}, "aggregation"),
        ({"value_property": "usage..bytes", "aggregation": "sum"}, "value_property"),
        ({"value_property": "usage.by tes", "aggregation": "sum"}, "value_property"),
        ({"filters": [{"property": "status", "op": "like", "value": 1}]}, "filters[0].op"),
        ({"filters": [{"property": "status", "op": "in", "value": 1}]}, "filters[0]"),
        ({"filters": [{"property": "status", "op": "in", "value": []}]}, "filters[0]"),
        ({"filters": [{"property": "status", "op": "gt", "value": True}]}, "filters[0]"),
        ({"filters": [{"property": "status", "op": "exists", "value": "yes"}]}, "filters[0]"),
        ({"group_by": ["a", "a"]}, "group_by"),
        ({"key": "has space"}, "key"),
        ({"event_type": ""}, "event_type"),
    ],
)
def test_invalid_meter_names_the_field(api, patch, field):
    r = api.post("/v1/meters", json=API_CALLS | patch)
    assert r.status_code == 422, r.text
    assert field in [e["field"] for e in r.json()["errors"]], r.json()


def test_update_validation(api):
    api.post("/v1/meters", json=API_CALLS)
    r = api.patch("/v1/meters/api_calls", json={"aggregation": "sum"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "value_property"
    r = api.patch("/v1/meters/api_calls", json={"aggregation": None})
    assert r.status_code == 422


def test_mutation_guard_makes_meter_read_only(api):
    api.post("/v1/meters", json=API_CALLS)

    def guard(session, key):
        return "used by the published plan 'pro'" if key == "api_calls" else None

    register_mutation_guard(guard)
    try:
        r = api.patch("/v1/meters/api_calls", json={"name": "x"})
        assert r.status_code == 409
        assert "published plan 'pro'" in r.json()["detail"]
    finally:
        MUTATION_GUARDS.remove(guard)
    assert api.patch("/v1/meters/api_calls", json={"name": "x"}).status_code == 200
