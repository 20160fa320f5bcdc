"""Custom alerts through HTTP: create, read, delete, and bad input naming the field."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.factories import create_customer, create_meter


def _field(r) -> str:  # type: ignore[no-untyped-def]
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    return str(r.json()["errors"][0]["field"])


def test_create_get_list_delete(api: TestClient) -> None:
    create_meter(api, key="api_calls", event_type="api_call")
    create_customer(api, id="acme")
    body = {"id": "al_1", "customer": "acme", "metric": "usage", "meter": "api_calls",
            "thresholds": ["1000", "5000"], "channels": ["webhook", "email"]}  # fmt: skip
    r = api.post("/v1/alerts", json=body)
    assert r.status_code == 201, r.text
    assert r.json() == {**body, "created_at": r.json()["created_at"]}
    assert api.get("/v1/alerts/al_1").json()["thresholds"] == ["1000", "5000"]
    spend = api.post("/v1/alerts", json={"id": "al_2", "metric": "spend", "thresholds": ["10.5"]})
    assert spend.status_code == 201 and spend.json()["customer"] is None
    assert spend.json()["channels"] == ["webhook", "email"]
    assert [a["id"] for a in api.get("/v1/alerts").json()["data"]] == ["al_1", "al_2"]
    assert [a["id"] for a in api.get("/v1/alerts?customer=acme").json()["data"]] == ["al_1"]
    assert api.post("/v1/alerts", json=body).status_code == 409
    assert api.delete("/v1/alerts/al_1").status_code == 204
    assert api.get("/v1/alerts/al_1").status_code == 404
    assert api.delete("/v1/alerts/al_1").status_code == 404
    assert api.get("/v1/alert-events").json() == {"data": [], "next": None}


def test_bad_input_names_the_field(api: TestClient) -> None:
    create_meter(api, key="api_calls", event_type="api_call")
    create_customer(api, id="acme")
    base = {"id": "al", "metric": "usage", "meter": "api_calls", "thresholds": ["10"]}
    cases = {
        "thresholds": [{"thresholds": ["0"]}, {"thresholds": ["-5"]}, {"thresholds": ["10", "10"]},
                       {"thresholds": ["10", "5"]}, {"thresholds": []}, {"thresholds": [1.5]},
                       {"thresholds": ["abc"]}],
        "meter": [{"meter": "nope"}, {"meter": None}, {"metric": "spend"}],
        "metric": [{"metric": "revenue"}],
        "customer": [{"customer": "ghost"}],
        "channels": [{"channels": ["sms"]}],
        "id": [{"id": "bad id"}],
    }  # fmt: skip
    for field, changes in cases.items():
        for change in changes:
            got = _field(api.post("/v1/alerts", json={**base, **change}))
            assert got.split("[")[0].split(".")[0] == field, (change, got)
    assert _field(api.get("/v1/alert-events?after=%%%")) == "after"
