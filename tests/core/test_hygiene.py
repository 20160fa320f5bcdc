"""OpenAPI and docs served offline, security headers, the access log, quiet logs, private
SQLite files, e-mail addresses."""

from __future__ import annotations

import logging
import os
import re
import stat
import subprocess
import sys

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from tests.conftest import LiveServer
from tollway import logs
from tollway.db import make_engine


def test_openapi_declares_the_bearer_scheme_and_the_event_bodies(anon) -> None:  # type: ignore[no-untyped-def]
    doc = anon.get("/openapi.json").json()
    assert doc["components"]["securitySchemes"]["apiKey"] == {
        "type": "http",
        "scheme": "bearer",
        "description": doc["components"]["securitySchemes"]["apiKey"]["description"],
    }
    operations = [
        (p, m, op)
        for p, ops in doc["paths"].items()
        for m, op in ops.items()
        if p.startswith("/v1/") and not p.startswith("/v1/webhooks/")  # signed by the provider, no key
    ]
    assert operations and all(
        op.get("security") == ([{"portalToken": []}] if p.startswith("/v1/portal/") else [{"apiKey": []}])
        for p, _, op in operations
    )
    body = doc["paths"]["/v1/events"]["post"]["requestBody"]["content"]
    assert set(body) == {"application/json", "application/cloudevents+json", "application/cloudevents-batch+json"}
    assert set(body["application/json"]["examples"]) == {"single", "batch"}


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_use_local_assets_only(anon, page: str) -> None:  # type: ignore[no-untyped-def]
    r = anon.get(page)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "'self'" in r.headers["content-security-policy"] and "cdn" not in r.text
    assert not re.search(r'(src|href)="(https?:)?//', r.text)
    assets = re.findall(r'(?:src|href)="(/[^"]+)"', r.text)
    assert assets
    for asset in assets:
        assert anon.get(asset).status_code == 200, asset


def test_root_redirects_to_the_console_and_version(anon) -> None:  # type: ignore[no-untyped-def]
    r = anon.get("/", follow_redirects=False)
    assert r.status_code in (302, 307) and r.headers["location"].endswith("/console")
    out = subprocess.run([sys.executable, "-m", "tollway", "--version"], capture_output=True, text=True, check=True)
    assert re.fullmatch(r"tollway \d+\.\d+\.\d+\S*\n", out.stdout)


def test_security_headers(api) -> None:  # type: ignore[no-untyped-def]
    json_response = api.get("/v1/customers")
    assert json_response.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" not in json_response.headers
    html = api.get("/docs")
    assert html.headers["x-content-type-options"] == "nosniff"
    assert html.headers["referrer-policy"] == "same-origin"
    assert "frame-ancestors 'none'" in html.headers["content-security-policy"]


def test_a_route_can_set_its_own_policy(app, anon) -> None:  # type: ignore[no-untyped-def]
    from fastapi.responses import HTMLResponse

    from tollway.kit.web import DEFAULT_CSP, csp

    @app.get("/framed", include_in_schema=False)
    def framed() -> HTMLResponse:
        return HTMLResponse("<p>hi</p>", headers={"Content-Security-Policy": csp(frame_ancestors="https://a.example")})

    @app.get("/plain", include_in_schema=False)
    def plain() -> HTMLResponse:
        return HTMLResponse("<p>hi</p>")

    framed_policy = anon.get("/framed").headers["content-security-policy"]
    assert "frame-ancestors https://a.example" in framed_policy and "script-src 'self'" in framed_policy
    assert anon.get("/plain").headers["content-security-policy"] == DEFAULT_CSP


def test_one_access_line_per_request_without_ids_keys_or_queries(api, admin_key: str, caplog) -> None:  # type: ignore[no-untyped-def]
    api.post("/v1/customers", json={"id": "secret-customer-id", "currency": "USD"})
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="tollway.access"):
        api.get("/v1/customers/secret-customer-id", params={"after": "c2VjcmV0"})
        api.get("/v1/customers/nope")
    lines = [r.getMessage() for r in caplog.records if r.name == "tollway.access"]
    assert len(lines) == 2
    assert re.fullmatch(r"GET /v1/customers/\{customer_id\} 200 \d+\.\dms", lines[0])
    assert re.fullmatch(r"GET /v1/customers/\{customer_id\} 404 \d+\.\dms", lines[1])
    text_ = " ".join(lines)
    assert "secret" not in text_ and admin_key not in text_ and "c2VjcmV0" not in text_


def test_sql_errors_do_not_show_parameters(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn, pytest.raises(DBAPIError) as caught:
            conn.execute(text("SELECT * FROM no_such_table WHERE x = :payload"), {"payload": "card-4242-payload"})
        assert "card-4242-payload" not in str(caught.value)
    finally:
        engine.dispose()


def test_libraries_log_warnings_only() -> None:
    logs.configure()
    for name in ("alembic", "fontTools", "fontTools.subset", "sqlalchemy.engine"):
        assert logging.getLogger(name).getEffectiveLevel() >= logging.WARNING, name


def test_new_sqlite_files_are_private(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "fresh.db"
    env = {**os.environ, "TOLLWAY_DATABASE_URL": f"sqlite:///{path}"}
    subprocess.run([sys.executable, "-m", "tollway", "migrate"], env=env, check=True, capture_output=True)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for extra in tmp_path.iterdir():
        assert stat.S_IMODE(extra.stat().st_mode) & 0o077 == 0, extra


@pytest.mark.parametrize(
    ("email", "ok"),
    [
        ("ops@acme.example.com", True),
        ("billing@example.com", True),
        ("a@acme.test", True),
        ("not-an-email", False),
        ("a@localhost", False),
        ("two@@signs.example.com", False),
    ],
)
def test_email_fields_are_addresses(api, email: str, ok: bool) -> None:  # type: ignore[no-untyped-def]
    r = api.post("/v1/customers", json={"id": "c1", "email": email, "currency": "USD"})
    if ok:
        assert r.status_code == 201, r.text
    else:
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "email"
        assert api.patch("/v1/customers/c1", json={"email": email}).status_code in (404, 422)


@pytest.mark.e2e
def test_quiet_start_and_access_log_through_a_real_server(live_server: LiveServer) -> None:
    key = live_server.key("admin")
    httpx.get(f"{live_server.url}/v1/customers/someone?after=x", headers={"Authorization": f"Bearer {key}"})
    live_server.process.terminate()
    live_server.process.wait(timeout=20)
    log = live_server.log()
    assert "Context impl" not in log and "alembic" not in log and "fontTools" not in log
    assert "tollway.access: GET /v1/customers/{customer_id} 404" in log
    assert key not in log and "someone" not in log and "after=" not in log
