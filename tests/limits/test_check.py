"""``POST /v1/limits/check`` through HTTP: decisions, windows in the customer's zone, overrides,
``limit.reached`` once per window, bad input, and Redis going away."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import redis
from sqlalchemy import select

from tests.conftest import free_port, make_key
from tests.limits.conftest import CHARGES, check, fold, iso, now, send, setup_limited
from tollway.limit.counters import RedisCounters
from tollway.models import OutboxMessage


def calls(n: int, *, start: int = 0, customer: str = "acme") -> list[dict[str, Any]]:
    return [
        {"id": f"c-{customer}-{i}", "customer": customer, "type": "api_call", "timestamp": iso(now())}
        for i in range(start, start + n)
    ]


def test_block_at_the_edge_and_notify_never_blocks(api, counters) -> None:  # type: ignore[no-untyped-def]
    limits = [
        {"meter": "api_calls", "max": 3, "window": "day", "action": "block"},
        {"meter": "api_calls", "max": 2, "window": "day", "action": "notify"},
    ]
    setup_limited(api, limits=limits, timezone="Europe/Rome")
    send(api, calls(2))
    state = check(api, meter="api_calls")
    assert state == {"allowed": True, "reason": None, "limits": state["limits"]}
    block = next(x for x in state["limits"] if x["action"] == "block")
    assert (block["used"], block["remaining"], block["max"], block["window"]) == ("2", "1", "3", "day")
    # The day ends at the next local midnight in Rome.
    rome = now().astimezone(ZoneInfo("Europe/Rome"))
    midnight = (rome + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    assert datetime.fromisoformat(block["resets_at"]) == midnight
    assert check(api, quantity="2")["allowed"] is False  # 2 + 2 > 3
    send(api, calls(1, start=2))
    state = check(api)
    assert (state["allowed"], state["reason"]) == (False, "limit_reached")
    assert check(api, quantity="0")["allowed"] is True  # a peek at the usage
    notify = next(x for x in state["limits"] if x["action"] == "notify")
    assert notify["used"] == "3" and notify["remaining"] == "0"


def test_override_replaces_the_period_max(api, counters) -> None:  # type: ignore[no-untyped-def]
    limits = [
        {"meter": "api_calls", "max": 2, "window": "period"},
        {"meter": "api_calls", "max": 2, "window": "hour"},
    ]
    setup_limited(api, limits=limits, overrides={"limits": {"api_calls": "5"}})
    send(api, calls(3))
    state = check(api)
    by_window = {x["window"]: x for x in state["limits"]}
    assert by_window["period"]["max"] == "5" and by_window["hour"]["max"] == "2"
    assert state["allowed"] is False  # the hour's limit still holds
    r = api.post("/v1/customers", json={"id": "beta"})
    assert r.status_code == 201
    r = api.post(
        "/v1/subscriptions",
        json={"id": "s-beta", "customer": "beta", "plan": "capped", "overrides": {"limits": {"bytes": "9"}}},
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "overrides.limits.bytes"


def test_limit_reached_fires_once_per_window(app, api, counters) -> None:  # type: ignore[no-untyped-def]
    setup_limited(api, limits=[{"meter": "api_calls", "max": 2, "window": "day", "action": "notify"}])
    check(api)
    send(api, calls(1))
    fold(app)
    send(api, calls(2, start=1))  # crosses 2 here: noticed by the worker's fold
    fold(app)
    send(api, calls(2, start=3))  # already past
    fold(app)
    # A new subscription makes the check seed again, with the counter past its max: no repeat.
    r = api.post("/v1/subscriptions", json={"id": "sub-again", "customer": "acme", "plan": "capped"})
    assert r.status_code == 201, r.text
    assert check(api)["limits"][0]["used"] == "5"
    with app.state.sessionmaker() as session:
        sent = session.scalars(select(OutboxMessage).where(OutboxMessage.topic == "limit.reached")).all()
    payloads = sorted((m.payload["subscription"], m.payload["used"]) for m in sent)
    # One per subscription's limit and window: sub-acme crossed at 3, sub-again was seeded at 5.
    assert payloads == [("sub-acme", "3"), ("sub-again", "5")]
    data = next(m.payload for m in sent if m.payload["subscription"] == "sub-acme")
    assert {"customer", "subscription", "meter", "window", "max", "used", "resets_at"} <= data.keys()
    assert (data["customer"], data["meter"], data["window"], data["max"]) == ("acme", "api_calls", "day", "2")


def test_answers_without_subscription_and_for_bad_input(app, api, counters) -> None:  # type: ignore[no-untyped-def]
    setup_limited(api, limits=[{"meter": "api_calls", "max": 2}])
    assert api.post("/v1/customers", json={"id": "free"}).status_code == 201
    assert check(api, "free") == {"allowed": True, "reason": "no_subscription", "limits": []}
    cases = [
        ({"customer": "ghost"}, "customer"),
        ({"customer": "acme", "meter": "nope"}, "meter"),
        ({"customer": "acme", "quantity": "-1"}, "quantity"),
        ({"customer": "acme", "quantity": 1.5}, "quantity"),
        ({"meter": "api_calls"}, "customer"),
    ]
    for body, field in cases:
        r = api.post("/v1/limits/check", json=body)
        assert r.status_code == 422, (body, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert [e["field"] for e in r.json()["errors"]] == [field], (body, r.text)
    # A meter without a limit for this customer: allowed, nothing to report.
    r = api.post("/v1/meters", json={"key": "other", "event_type": "other", "aggregation": "count"})
    assert r.status_code == 201
    assert check(api, meter="other") == {"allowed": True, "reason": None, "limits": []}
    ingest = make_key(app, "ingest")
    r = api.post("/v1/limits/check", json={"customer": "acme"}, headers={"Authorization": f"Bearer {ingest}"})
    assert r.status_code == 200 and r.json()["limits"][0]["used"] == "0"
    assert api.post("/v1/limits/check", json={"customer": "acme"}, headers={"Authorization": ""}).status_code == 401


def test_plan_limits_are_validated(api, counters) -> None:  # type: ignore[no-untyped-def]
    for meter in (
        {"key": "api_calls", "event_type": "api_call", "aggregation": "count"},
        {"key": "peak", "event_type": "api_call", "aggregation": "max", "value_property": "n"},
        {"key": "users", "event_type": "api_call", "aggregation": "unique_count", "value_property": "user"},
    ):
        assert api.post("/v1/meters", json=meter).status_code == 201
    cases = [
        ([{"meter": "api_calls", "max": 5, "window": "week"}], "limits[0].window"),
        ([{"meter": "api_calls", "max": 0}], "limits[0].max"),
        ([{"meter": "peak", "max": 5}], "limits[0].meter"),
        ([{"meter": "api_calls", "max": 5}, {"meter": "users", "max": 5}], "limits[1].meter"),
        ([{"meter": "api_calls", "max": 5, "window": "day"}] * 2, "limits[1]"),
    ]
    for limits, field in cases:
        r = api.post("/v1/plans", json={"code": "p", "currency": "USD", "charges": CHARGES, "limits": limits})
        assert r.status_code == 422, (limits, r.text)
        assert field in [e["field"] for e in r.json()["errors"]], (limits, r.text)
    ok = [{"meter": "api_calls", "max": 5, "window": "day"}, {"meter": "api_calls", "max": 50}]
    r = api.post("/v1/plans", json={"code": "p", "currency": "USD", "charges": CHARGES, "limits": ok})
    assert r.status_code == 201, r.text


def test_redis_down_falls_back_and_recovers(app, api, counters) -> None:  # type: ignore[no-untyped-def]
    if counters != "redis":
        return  # the database backend has no Redis to lose
    setup_limited(api, limits=[{"meter": "api_calls", "max": 10, "window": "day"}])
    send(api, calls(2))
    assert check(api)["limits"][0]["used"] == "2"
    backend: RedisCounters = app.state.limits.backend
    alive = backend.client
    backend.client = redis.Redis(port=free_port(), socket_connect_timeout=0.2, socket_timeout=0.2)
    try:
        r = api.post("/v1/events", json={"events": calls(3, start=2)})
        assert r.status_code == 202 and r.json()["accepted"] == 3  # ingestion never uses Redis
        assert fold(app) == 5  # rolled up; the counters in Redis miss them
        assert check(api)["limits"][0]["used"] == "5"  # fallback: computed from the events
        app.state.limits.fallback = "allow"
        assert check(api) == {"allowed": True, "reason": "limits_unavailable", "limits": []}
    finally:
        backend.client = alive
        app.state.limits.fallback = "database"
    # Redis is back: the process bumps the epoch, the check seeds again from the events.
    assert check(api)["limits"][0]["used"] == "5"
    send(api, calls(1, start=5))
    assert check(api)["limits"][0]["used"] == "6"  # 5 in the counters, 1 pending
    assert fold(app) == 1
    assert check(api)["limits"][0]["used"] == "6"
