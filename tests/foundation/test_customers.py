from __future__ import annotations

import pytest

ACME = {
    "id": "acme",
    "name": "Acme",
    "email": "ops@acme.test",
    "currency": "USD",
    "timezone": "Europe/Rome",
    "category": "partners",
    "company": "acme-group",
    "tax_rate": "22",
    "metadata": {"tier": "gold"},
}


def test_create_get_update(api):
    r = api.post("/v1/customers", json=ACME)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["id"] == "acme" and body["tax_rate"] == "22" and body["metadata"] == {"tier": "gold"}
    assert body["created_at"].endswith("Z")
    got = api.get("/v1/customers/acme").json()
    assert got["timezone"] == "Europe/Rome" and got["company"] == "acme-group"
    r = api.patch("/v1/customers/acme", json={"name": "Acme Inc", "tax_rate": "10.5"})
    assert r.status_code == 200
    assert r.json()["name"] == "Acme Inc" and r.json()["tax_rate"] == "10.5"
    assert r.json()["email"] == "ops@acme.test"


def test_duplicate_id_is_409(api):
    assert api.post("/v1/customers", json={"id": "a"}).status_code == 201
    r = api.post("/v1/customers", json={"id": "a"})
    assert r.status_code == 409
    assert r.json()["type"] == "urn:tollway:problem:customer_exists"


def test_missing_customer_is_404(api):
    r = api.get("/v1/customers/nobody")
    assert r.status_code == 404
    assert api.patch("/v1/customers/nobody", json={"name": "x"}).status_code == 404


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"id": "bad id with spaces"}, "id"),
        ({"id": "x" * 201}, "id"),
        ({"id": "ok", "currency": "EURO"}, "currency"),
        ({"id": "ok", "timezone": "Mars/Olympus"}, "timezone"),
        ({"id": "ok", "tax_rate": "101"}, "tax_rate"),
        ({"id": "ok", "tax_rate": 0.22}, "tax_rate"),
        ({"id": "ok", "email": "not-an-email"}, "email"),
        ({"id": "ok", "metadata": []}, "metadata"),
        ({"id": "ok", "unknown": 1}, "unknown"),
        ({}, "id"),
    ],
)
def test_bad_input_names_the_field(api, patch, field):
    r = api.post("/v1/customers", json=patch)
    assert r.status_code == 422, r.text
    assert field in [e["field"] for e in r.json()["errors"]]


def test_list_paginates_with_cursor(api):
    ids = [f"c{i:02d}" for i in range(7)]
    for cid in reversed(ids):
        assert api.post("/v1/customers", json={"id": cid}).status_code == 201
    seen, after = [], None
    while True:
        params = {"limit": 3} | ({"after": after} if after else {})
        page = api.get("/v1/customers", params=params).json()
        seen += [c["id"] for c in page["data"]]
        after = page["next"]
        if after is None:
            break
    assert seen == ids
    assert api.get("/v1/customers", params={"limit": 501}).status_code == 422
    assert api.get("/v1/customers", params={"after": "%%%"}).status_code == 422


def test_idempotency_key_replays_first_response(api):
    h = {"Idempotency-Key": "create-acme-1"}
    first = api.post("/v1/customers", json=ACME, headers=h)
    again = api.post("/v1/customers", json=ACME, headers=h)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert again.headers.get("idempotent-replayed") == "true"
    other = api.post("/v1/customers", json={**ACME, "name": "Other"}, headers=h)
    assert other.status_code == 409
    assert other.json()["type"] == "urn:tollway:problem:idempotency_key_reused"
