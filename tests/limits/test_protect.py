"""Protections of Tollway itself: per-key rate limits (Redis or in-process), customer-scoped
ingest keys, and the late-event window. All off unless configured."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import LiveServer, make_key, start_server
from tests.limits.conftest import CHARGES, REDIS_URL
from tollway.auth.keys import create_key
from tollway.db import session_scope
from tollway.limit.protect import KeyRateLimiter


def test_key_rate_limit(app, api, counters, redis_prefix) -> None:  # type: ignore[no-untyped-def]
    assert app.state.key_rate_limiter is None  # off unless configured
    for _ in range(30):
        assert api.get("/v1/customers").status_code == 200
    redis_url = REDIS_URL if counters == "redis" else None
    app.state.key_rate_limiter = KeyRateLimiter(5, redis_url=redis_url, prefix=redis_prefix)
    statuses = [api.get("/v1/customers") for _ in range(20)]
    refused = [r for r in statuses if r.status_code == 429]
    assert 10 <= len(refused) <= 15  # a burst of 5, then about 5 a second
    assert refused[0].headers["retry-after"] == "1"
    assert refused[0].json()["type"].endswith("rate_limited")
    other = make_key(app, "ingest")  # another key has its own budget
    r = api.post("/v1/limits/check", json={"customer": "x"}, headers={"Authorization": f"Bearer {other}"})
    assert r.status_code == 422
    deadline = time.monotonic() + 5  # the budget refills: one request every 0.2 s
    while (r := api.get("/v1/customers")).status_code == 429 and time.monotonic() < deadline:
        time.sleep(0.05)  # a refused request takes nothing from the budget
    assert r.status_code == 200


def test_customer_scoped_ingest_key(app, api) -> None:  # type: ignore[no-untyped-def]
    assert api.post("/v1/customers", json={"id": "acme"}).status_code == 201
    assert api.post("/v1/customers", json={"id": "beta"}).status_code == 201
    with session_scope(app.state.sessionmaker) as session:
        _, secret = create_key(session, scope="ingest", customer="acme")
        with pytest.raises(ValueError, match="only ingest keys"):
            create_key(session, scope="admin", customer="acme")
    headers = {"Authorization": f"Bearer {secret}"}
    events = [
        {"id": "a1", "customer": "acme", "type": "api_call"},
        {"id": "b1", "customer": "beta", "type": "api_call"},
        {"id": "a2", "customer": "acme", "type": "api_call"},
    ]
    r = api.post("/v1/events", json={"events": events}, headers=headers)
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["accepted"] == 2
    assert [(e["index"], e["id"], e["field"]) for e in body["errors"]] == [(1, "b1", "events[1].customer")]
    assert api.get("/v1/events/b1").status_code == 404
    r = api.post("/v1/events", json=events[1], headers=headers)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "customer"
    assert api.post("/v1/limits/check", json={"customer": "acme"}, headers=headers).status_code == 200
    assert api.post("/v1/limits/check", json={"customer": "beta"}, headers=headers).status_code == 403


def test_late_event_window(app, api) -> None:  # type: ignore[no-untyped-def]
    meter = {"key": "api_calls", "event_type": "api_call", "aggregation": "count"}
    assert api.post("/v1/meters", json=meter).status_code == 201
    assert api.post("/v1/customers", json={"id": "acme"}).status_code == 201
    assert api.post("/v1/plans", json={"code": "p", "currency": "USD", "charges": CHARGES}).status_code == 201
    assert api.post("/v1/plans/p/publish").status_code == 200
    sub = {"id": "s1", "customer": "acme", "plan": "p", "start": "2026-01-01T00:00:00Z"}
    assert api.post("/v1/subscriptions", json=sub).status_code == 201
    r = api.post("/v1/billing/run", json={"until": "2026-02-01T00:00:00Z"})
    assert r.status_code == 200, r.text

    def late(i: int) -> dict[str, str]:
        return {"id": f"late-{i}", "customer": "acme", "type": "api_call", "timestamp": "2026-01-15T10:00:00Z"}

    current = {"id": "now-1", "customer": "acme", "type": "api_call", "timestamp": "2026-02-02T10:00:00Z"}
    # Off by default: a late event is kept (an adjustment on the next invoice).
    assert api.post("/v1/events", json=late(0)).json()["accepted"] == 1
    app.state.settings.late_event_days = 30  # invoiced today: not more than 30 days ago
    assert api.post("/v1/events", json=late(1)).json()["accepted"] == 1
    app.state.settings.late_event_days = 0
    r = api.post("/v1/events", json={"events": [late(2), current]})
    assert r.status_code == 202, r.text
    assert r.json()["accepted"] == 1
    [error] = r.json()["errors"]
    assert (error["index"], error["field"]) == (0, "events[0].timestamp")
    assert "TOLLWAY_LATE_EVENT_DAYS" in error["message"]


@pytest.fixture
def protected_server(db_url: str) -> Iterator[LiveServer]:
    server = start_server(db_url, extra_env={"TOLLWAY_KEY_RATE_LIMIT": "3", "TOLLWAY_RUN_WORKER_IN_SERVE": "false"})
    yield server
    server.process.terminate()
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.process.kill()


@pytest.mark.e2e
def test_protections_through_a_real_server(protected_server: LiveServer) -> None:
    admin = protected_server.key("admin")
    scoped = protected_server.cli("keys", "create", "--scope", "ingest", "--customer", "acme")
    scoped_key = scoped.strip().splitlines()[-1]
    refused = subprocess.run(
        [sys.executable, "-m", "tollway", "keys", "create", "--scope", "admin", "--customer", "acme"],
        env=protected_server.env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert refused.returncode == 2 and "ingest keys only" in refused.stderr
    with httpx.Client(base_url=protected_server.url, timeout=10) as http:
        auth = {"Authorization": f"Bearer {admin}"}
        statuses = [http.get("/v1/customers", headers=auth).status_code for _ in range(8)]
        assert statuses[:3] == [200, 200, 200] and 429 in statuses
        events = [{"id": "x1", "customer": "other", "type": "t"}, {"id": "x2", "customer": "acme", "type": "t"}]
        r = http.post("/v1/events", json={"events": events}, headers={"Authorization": f"Bearer {scoped_key}"})
        assert r.status_code == 202 and r.json()["accepted"] == 1, r.text
