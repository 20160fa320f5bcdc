"""Limits through the SDK against the real Tollway server: ``client.check``, and the ASGI and
WSGI middlewares with ``enforce_limits=True`` (429 problem+json with Retry-After, decisions
cached for at most a second, customers without limits answered from the cache, fail-open)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from flask import Flask, jsonify
from werkzeug.serving import make_server

from test_e2e import Admin, TollwayServer, UvicornThread, free_port
from tollway_sdk import Client, TollwayASGIMiddleware, TollwayWSGIMiddleware

pytestmark = pytest.mark.e2e

MAX = 3


@pytest.fixture(scope="module")
def tollway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TollwayServer, Admin, str]]:
    server = TollwayServer(tmp_path_factory.mktemp("tollway-limits"))
    server.env["TOLLWAY_RUN_WORKER_IN_SERVE"] = "false"
    admin_key = server.create_key("admin")
    ingest_key = server.create_key("ingest")
    server.start()
    admin = Admin(server, admin_key)
    admin.create_meter("calls", "api_call", "count")
    plan = {
        "code": "capped",
        "currency": "USD",
        "charges": [{"code": "calls", "meter": "calls", "model": "flat", "unit_price": "0.01"}],
        "limits": [{"meter": "calls", "max": MAX, "window": "day", "action": "block"}],
    }
    assert admin.http.post("/v1/plans", json=plan).status_code == 201
    assert admin.http.post("/v1/plans/capped/publish").status_code == 200
    try:
        yield server, admin, ingest_key
    finally:
        server.stop()


def limited_customer(admin: Admin, customer: str) -> None:
    assert admin.http.post("/v1/customers", json={"id": customer}).status_code == 201
    start = (datetime.now(timezone.utc) - timedelta(days=1)).isoformat()
    sub = {"id": f"sub-{customer}", "customer": customer, "plan": "capped", "start": start}
    r = admin.http.post("/v1/subscriptions", json=sub)
    assert r.status_code == 201, r.text


def test_client_check(tollway: Any) -> None:
    server, admin, key = tollway
    limited_customer(admin, "chk")
    with Client(server.url, key, flush_interval=0.05) as client:
        first = client.check("chk", "calls")
        assert first.allowed and first.reason is None and first.limits[0]["remaining"] == str(MAX)
        assert client.check("chk", quantity=MAX + 1).allowed is False
        for _ in range(MAX):
            client.track("chk", "api_call")
        assert client.flush(timeout=10)
        refused = client.check("chk", "calls")
        assert (refused.allowed, refused.reason) == (False, "limit_reached")
        assert 1 <= refused.retry_after() <= 86_400
        with pytest.raises(TypeError):
            client.check("chk", quantity=1.5)  # type: ignore[arg-type]


def asgi_app(client: Client, **options: Any) -> FastAPI:
    app = FastAPI()

    @app.get("/v1/forecast")
    def forecast() -> dict[str, str]:
        return {"sky": "clear"}

    app.add_middleware(
        TollwayASGIMiddleware,
        client=client,
        identify=lambda request: request.headers.get("x-customer"),
        enforce_limits=True,
        **options,
    )
    return app


def test_asgi_middleware_answers_429_once_the_limit_is_reached(tollway: Any) -> None:
    server, admin, key = tollway
    limited_customer(admin, "asgi")
    assert admin.http.post("/v1/customers", json={"id": "free"}).status_code == 201
    client = Client(server.url, key, flush_interval=0.05)
    with UvicornThread(asgi_app(client)) as api, httpx.Client(base_url=api.url) as http:
        for _ in range(MAX):
            assert http.get("/v1/forecast", headers={"x-customer": "asgi"}).status_code == 200
        assert client.flush(timeout=10)
        time.sleep(1.05)  # the cached decision (at most 1 s old) expires
        refused = http.get("/v1/forecast", headers={"x-customer": "asgi"})
        assert refused.status_code == 429
        assert refused.headers["content-type"] == "application/problem+json"
        assert 1 <= int(refused.headers["retry-after"]) <= 86_400
        assert refused.json()["limits"][0]["used"] == str(MAX)
        # A customer without limits: one check, then the cache (refreshed in the background).
        before = client.limits.checks
        for _ in range(50):
            assert http.get("/v1/forecast", headers={"x-customer": "free"}).status_code == 200
        assert client.limits.checks - before == 1
        assert http.get("/v1/forecast").status_code == 200  # nobody identified: not checked
    assert client.flush(timeout=10)
    client.close()
    assert client.stats.accepted == MAX + 50  # the refused request was not metered


def test_asgi_middleware_answers_429_when_prepaid_credits_run_out(tollway: Any) -> None:
    """A prepaid customer with 0.02 of credit at 0.01 a call: two calls, then Tollway answers
    ``credits_exhausted`` (its limit of 3 a day still has room) and the middleware a 429."""
    server, admin, key = tollway
    body = {"id": "prepaid", "currency": "USD", "billing_type": "prepaid"}
    assert admin.http.post("/v1/customers", json=body).status_code == 201
    start = (datetime.now(timezone.utc) - timedelta(days=1)).isoformat()
    sub = {"id": "sub-prepaid", "customer": "prepaid", "plan": "capped", "start": start}
    assert admin.http.post("/v1/subscriptions", json=sub).status_code == 201
    grant = {"id": "cg-prepaid", "amount": "0.02"}
    assert admin.http.post("/v1/customers/prepaid/credit-grants", json=grant).status_code == 201
    client = Client(server.url, key, flush_interval=0.05)
    with UvicornThread(asgi_app(client)) as api, httpx.Client(base_url=api.url) as http:
        for _ in range(2):
            assert http.get("/v1/forecast", headers={"x-customer": "prepaid"}).status_code == 200
        assert client.flush(timeout=10)
        time.sleep(1.05)  # the cached decision (at most 1 s old) expires
        refused = http.get("/v1/forecast", headers={"x-customer": "prepaid"})
        assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
        problem = refused.json()
        assert problem["type"] == "urn:tollway:problem:credits_exhausted"
        assert problem["reason"] == "credits_exhausted" and "credits" in problem["detail"]
        assert problem["limits"][0]["remaining"] == "1"
    client.close()
    assert client.stats.accepted == 2  # the refused request was not metered


def test_wsgi_middleware_answers_429_and_fails_open(tollway: Any) -> None:
    server, admin, key = tollway
    limited_customer(admin, "wsgi")
    client = Client(server.url, key, flush_interval=0.05)
    app = Flask(__name__)

    @app.get("/v1/forecast")
    def forecast() -> Any:
        return jsonify(sky="clear")

    app.wsgi_app = TollwayWSGIMiddleware(  # type: ignore[method-assign]
        app.wsgi_app, client, identify=lambda request: request.headers.get("X-Customer"), enforce_limits=True
    )
    httpd = make_server("127.0.0.1", free_port(), app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{httpd.server_port}"
        with httpx.Client(base_url=base, headers={"X-Customer": "wsgi"}) as http:
            for _ in range(MAX):
                assert http.get("/v1/forecast").status_code == 200
            assert client.flush(timeout=10)
            time.sleep(1.05)
            refused = http.get("/v1/forecast")
            assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
            assert refused.json()["type"] == "urn:tollway:problem:limit_reached"
    finally:
        httpd.shutdown()
        thread.join(10)
    client.close()

    # Tollway unreachable: let through by default, refused with 503 when failing closed.
    dead = f"http://127.0.0.1:{free_port()}"
    for fail_open, expected in ((True, 200), (False, 503)):
        down = Client(dead, key, limits_fail_open=fail_open, max_retries=0)
        with UvicornThread(asgi_app(down)) as api:
            assert httpx.get(f"{api.url}/v1/forecast", headers={"x-customer": "wsgi"}).status_code == expected
        down.close(timeout=0.5)
