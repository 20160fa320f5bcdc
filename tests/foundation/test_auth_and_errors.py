from __future__ import annotations

from sqlalchemy import select

from tollway.models import ApiKey


def test_missing_key_is_401_problem_json(anon):
    r = anon.get("/v1/customers")
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["status"] == 401 and body["title"] == "Unauthorized"
    assert "WWW-Authenticate" in r.headers


def test_invalid_key_is_401(anon):
    r = anon.get("/v1/customers", headers={"Authorization": "Bearer tw_admin_not-a-real-key"})
    assert r.status_code == 401
    r = anon.get("/v1/customers", headers={"Authorization": "Basic abc"})
    assert r.status_code == 401


def test_ingest_key_only_posts_events(anon, ingest_key):
    h = {"Authorization": f"Bearer {ingest_key}"}
    assert anon.get("/v1/customers", headers=h).status_code == 403
    assert anon.post("/v1/meters", headers=h, json={}).status_code == 403
    r = anon.post("/v1/events", headers=h, json={"id": "e1", "customer": "c", "type": "t"})
    assert r.status_code == 202, r.text
    assert anon.get("/v1/events/e1", headers=h).status_code == 403


def test_admin_key_does_everything(api):
    assert api.post("/v1/events", json={"id": "e1", "customer": "c", "type": "t"}).status_code == 202
    assert api.get("/v1/events/e1").status_code == 200


def test_keys_are_stored_hashed(app, admin_key, session_factory):
    with session_factory() as s:
        rows = s.scalars(select(ApiKey)).all()
    assert rows
    for row in rows:
        assert admin_key not in (row.key_hash, row.prefix, row.id)
        assert len(row.key_hash) == 64


def test_validation_error_names_the_field(api):
    r = api.post("/v1/customers", json={"id": "acme", "currency": "XXQ"})
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["errors"][0]["field"] == "currency"
    assert "ISO 4217" in body["errors"][0]["message"]


def test_malformed_json_body_is_4xx(api):
    r = api.post("/v1/customers", content=b"{not json", headers={"content-type": "application/json"})
    assert 400 <= r.status_code < 500
    assert r.headers["content-type"] == "application/problem+json"


def test_unknown_route_is_problem_json(api):
    r = api.get("/v1/nope")
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"


def test_openapi_and_docs_are_served(anon):
    spec = anon.get("/openapi.json")
    assert spec.status_code == 200
    paths = spec.json()["paths"]
    for p in ("/v1/events", "/v1/customers", "/v1/meters", "/v1/meters/{key}/usage"):
        assert p in paths
    docs = anon.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
