"""Webhook endpoints through HTTP: CRUD, the secret shown on create and rotate only, bad input."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from tollway.app import create_app
from tollway.config import Settings
from tollway.kit.crypto import decrypt
from tollway.models import WebhookEndpoint

from .conftest import SECRET_KEY


def test_crud_and_secret_shown_once(api: TestClient, session_factory) -> None:  # type: ignore[no-untyped-def]
    r = api.post(
        "/v1/webhook-endpoints",
        json={"id": "wh_1", "url": "https://hooks.example.com/tw", "event_types": ["alert.triggered"],
              "description": "ops"},
    )
    assert r.status_code == 201, r.text
    created = r.json()
    secret = created["secret"]
    assert secret.startswith("whsec_") and len(secret) > 20
    assert created["status"] == "enabled" and created["event_types"] == ["alert.triggered"]

    got = api.get("/v1/webhook-endpoints/wh_1").json()
    assert "secret" not in got and got["url"] == "https://hooks.example.com/tw"
    listed = api.get("/v1/webhook-endpoints").json()
    assert [e["id"] for e in listed["data"]] == ["wh_1"] and "secret" not in listed["data"][0]

    with session_factory() as session:  # stored encrypted, not in clear
        row = session.scalars(select(WebhookEndpoint)).one()
        assert secret not in row.secret_encrypted
        assert decrypt("webhook-secret", row.secret_encrypted, secret=SECRET_KEY) == secret

    patched = api.patch("/v1/webhook-endpoints/wh_1", json={"event_types": None, "description": "all"}).json()
    assert patched["event_types"] is None and patched["description"] == "all"

    rotated = api.post("/v1/webhook-endpoints/wh_1/rotate-secret")
    assert rotated.status_code == 200
    assert rotated.json()["secret"].startswith("whsec_") and rotated.json()["secret"] != secret

    assert api.post("/v1/webhook-endpoints", json={"id": "wh_1", "url": "https://x.example.com"}).status_code == 409
    assert api.delete("/v1/webhook-endpoints/wh_1").status_code == 204
    assert api.get("/v1/webhook-endpoints/wh_1").status_code == 404
    assert api.get("/v1/webhook-endpoints/wh_1/deliveries").status_code == 404
    assert api.post("/v1/webhook-deliveries/dlv_999/retry").status_code == 404
    assert api.post("/v1/webhook-deliveries/nonsense/retry").status_code == 404


def _field(r) -> str:  # type: ignore[no-untyped-def]
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    return str(r.json()["errors"][0]["field"])


def test_bad_input_names_the_field(api: TestClient) -> None:
    for url in ["ftp://example.com/x", "not a url", "https://", "http://user:pw@example.com/", "https://exa mple.com"]:
        assert _field(api.post("/v1/webhook-endpoints", json={"id": "w", "url": url})) == "url", url
    r = api.post("/v1/webhook-endpoints", json={"id": "w", "url": "https://e.com", "event_types": ["invoice.lost"]})
    assert _field(r) == "event_types"
    assert "invoice.lost" in r.json()["errors"][0]["message"]
    assert _field(api.post("/v1/webhook-endpoints", json={"id": "bad id", "url": "https://e.com"})) == "id"
    api.post("/v1/webhook-endpoints", json={"id": "w", "url": "https://e.com"})
    assert _field(api.patch("/v1/webhook-endpoints/w", json={"status": "paused"})) == "status"
    assert _field(api.patch("/v1/webhook-endpoints/w", json={"url": None})) == "url"


def test_private_literal_urls_refused_unless_allowed(db_url: str) -> None:
    settings = Settings(database_url=db_url, run_worker_in_serve=False, secret_key=SECRET_KEY)
    app = create_app(settings)
    from tests.conftest import make_key

    key = make_key(app, "admin")
    with TestClient(app, headers={"Authorization": f"Bearer {key}"}) as client:
        for url in ["http://127.0.0.1:8080/x", "http://10.0.0.5/x", "http://[::1]/x", "http://169.254.169.254/x",
                    "http://localhost/x"]:
            r = client.post("/v1/webhook-endpoints", json={"id": "w", "url": url})
            assert _field(r) == "url", url
        assert client.post("/v1/webhook-endpoints", json={"id": "w", "url": "https://8.8.8.8/x"}).status_code == 201
    app.state.engine.dispose()


def test_no_secret_key_is_a_clear_error(db_url: str) -> None:
    settings = Settings(database_url=db_url, run_worker_in_serve=False, secret_key=None)
    app = create_app(settings)
    from tests.conftest import make_key

    key = make_key(app, "admin")
    with TestClient(app, headers={"Authorization": f"Bearer {key}"}) as client:
        r = client.post("/v1/webhook-endpoints", json={"id": "w", "url": "https://e.com/x"})
        assert r.status_code == 503
        assert "TOLLWAY_SECRET_KEY" in r.json()["detail"]
        assert client.get("/v1/webhook-endpoints").json()["data"] == []
    app.state.engine.dispose()
