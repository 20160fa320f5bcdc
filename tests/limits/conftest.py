"""Fixtures for the limits tests: every counter test runs with the database counters and with
Redis counters (a real Redis at 127.0.0.1:6379, under a key prefix of its own, removed after)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tollway.config import Settings
from tollway.db import session_scope
from tollway.meter.fold import apply_pending

REDIS_URL = os.environ.get("TOLLWAY_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def redis_available() -> str | None:
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
        return None
    except Exception as exc:
        return str(exc)


def drop_prefix(prefix: str) -> None:
    """Delete this test's keys only (never FLUSHDB: the Redis is shared)."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(match=f"{prefix}|*", count=1000):
        client.delete(key)


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    prefix = f"twtest-{uuid.uuid4().hex[:12]}"
    yield prefix
    if redis_available() is None:
        drop_prefix(prefix)


@pytest.fixture(params=["database", "redis"])
def counters(request: pytest.FixtureRequest) -> str:
    if request.param == "redis":
        problem = redis_available()
        if problem:
            if os.environ.get("CI") == "true":
                pytest.fail(f"Redis is required when CI=true and is not reachable: {problem}")
            pytest.skip(f"Redis not reachable: {problem}")
    return str(request.param)


@pytest.fixture
def settings(db_url: str, counters: str, redis_prefix: str) -> Settings:
    if counters == "redis":
        return Settings(
            database_url=db_url, run_worker_in_serve=False, redis_url=REDIS_URL, redis_prefix=redis_prefix
        )
    return Settings(database_url=db_url, run_worker_in_serve=False)


CHARGES = [{"code": "calls", "meter": "api_calls", "model": "flat", "unit_price": "0.001"}]
"""A plan needs something to charge to be published."""


def iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def now() -> datetime:
    return datetime.now(UTC)


def setup_limited(
    api: TestClient,
    *,
    customer: str = "acme",
    limits: list[dict[str, Any]],
    plan: str = "capped",
    meters: list[dict[str, Any]] | None = None,
    timezone: str = "UTC",
    overrides: dict[str, Any] | None = None,
) -> None:
    """A customer subscribed (since three days ago) to a published plan with ``limits``."""
    for meter in meters or [{"key": "api_calls", "event_type": "api_call", "aggregation": "count"}]:
        r = api.post("/v1/meters", json=meter)
        assert r.status_code in (201, 409), r.text
    r = api.post("/v1/customers", json={"id": customer, "timezone": timezone})
    assert r.status_code == 201, r.text
    r = api.get(f"/v1/plans/{plan}")
    if r.status_code == 404:
        r = api.post("/v1/plans", json={"code": plan, "currency": "USD", "limits": limits, "charges": CHARGES})
        assert r.status_code == 201, r.text
        r = api.post(f"/v1/plans/{plan}/publish")
        assert r.status_code == 200, r.text
    body: dict[str, Any] = {"id": f"sub-{customer}", "customer": customer, "plan": plan}
    body["start"] = iso(now() - timedelta(days=3))
    if overrides:
        body["overrides"] = overrides
    r = api.post("/v1/subscriptions", json=body)
    assert r.status_code == 201, r.text


def check(api: TestClient, customer: str = "acme", **body: Any) -> dict[str, Any]:
    r = api.post("/v1/limits/check", json={"customer": customer, **body})
    assert r.status_code == 200, r.text
    return dict(r.json())


def fold(app: Any) -> int:
    """What the worker does every rollup interval: roll the pending events up and fold them into
    the limit counters, in one transaction (with the app's own keeper, so a test can cut its
    Redis). Returns how many events were folded."""
    undo: list[Callable[[], None]] = []
    try:
        with session_scope(app.state.sessionmaker) as session:
            return apply_pending(session, fold=app.state.limits.folding(undo))
    except BaseException:
        for step in undo:
            step()
        raise


def send(api: TestClient, events: list[dict[str, Any]]) -> dict[str, Any]:
    r = api.post("/v1/events", json={"events": events})
    assert r.status_code == 202, r.text
    return dict(r.json())
