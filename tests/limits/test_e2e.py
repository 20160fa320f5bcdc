"""Limits through a real ``tollway serve`` process, with Redis counters and with database ones, with
and without its worker folding events into the counters."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import text

from tests.conftest import LiveServer, start_server, stop_server
from tests.limits.conftest import CHARGES, REDIS_URL, iso, now
from tollway.db import make_engine, session_scope
from tollway.db import make_sessionmaker as sessions
from tollway.limit.counters import purge_ended
from tollway.meter.sql import PENDING_COUNT_SQL, dialect_for


def visible(api: httpx.Client, path: str) -> None:
    """Wait until a resource just created can be read (until the request commits before it
    answers, a write's commit may trail its response on PostgreSQL)."""
    deadline = time.monotonic() + 5
    while api.get(path).status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.05)


@pytest.fixture
def server(db_url: str, counters: str, redis_prefix: str) -> Iterator[LiveServer]:
    env = {"TOLLWAY_RUN_WORKER_IN_SERVE": "false"}
    if counters == "redis":
        env |= {"TOLLWAY_REDIS_URL": REDIS_URL, "TOLLWAY_REDIS_PREFIX": redis_prefix}
    live = start_server(db_url, extra_env=env)
    yield live
    live.process.terminate()
    try:
        live.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        live.process.kill()


@pytest.mark.e2e
def test_a_gateway_is_stopped_at_its_limit(server: LiveServer) -> None:
    admin = server.key("admin")
    ingest = server.key("ingest")
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {admin}"}, timeout=10) as api:
        meter = {"key": "api_calls", "event_type": "api_call", "aggregation": "count"}
        assert api.post("/v1/meters", json=meter).status_code == 201
        visible(api, "/v1/meters/api_calls")
        assert api.post("/v1/customers", json={"id": "acme"}).status_code == 201
        plan = {"code": "p", "currency": "USD", "charges": CHARGES, "limits": [{"meter": "api_calls", "max": 5}]}
        assert api.post("/v1/plans", json=plan).status_code == 201
        visible(api, "/v1/plans/p")
        assert api.post("/v1/plans/p/publish").status_code == 200
        visible(api, "/v1/customers/acme")
        start = iso(now() - timedelta(days=1))
        sub = {"id": "s1", "customer": "acme", "plan": "p", "start": start}
        assert api.post("/v1/subscriptions", json=sub).status_code == 201
        visible(api, "/v1/subscriptions/s1")
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {ingest}"}, timeout=10) as gw:
        decisions = []
        for i in range(7):
            r = gw.post("/v1/limits/check", json={"customer": "acme", "meter": "api_calls"})
            assert r.status_code == 200, r.text
            decisions.append(r.json()["allowed"])
            if r.json()["allowed"]:
                event = {"id": f"e{i}", "customer": "acme", "type": "api_call"}
                assert gw.post("/v1/events", json=event).status_code == 202
        assert decisions == [True] * 5 + [False] * 2  # no lag: each event counts at once
        state = gw.post("/v1/limits/check", json={"customer": "acme"}).json()
        assert state["reason"] == "limit_reached" and state["limits"][0]["used"] == "5"


@pytest.mark.e2e
def test_a_prepaid_customer_is_stopped_when_its_credits_run_out(server: LiveServer) -> None:
    """0.50 per call and a 1.50 grant: three calls pay it off, the fourth check is refused with
    ``credits_exhausted``; a top-up lets the customer go on; a postpaid customer never stops."""
    admin = server.cli("keys", "create", "--scope", "admin").strip().splitlines()[-1]
    ingest = server.cli("keys", "create", "--scope", "ingest").strip().splitlines()[-1]
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {admin}"}, timeout=10) as api:
        meter = {"key": "api_calls", "event_type": "api_call", "aggregation": "count"}
        assert api.post("/v1/meters", json=meter).status_code == 201
        charges = [{"code": "calls", "meter": "api_calls", "model": "flat", "unit_price": "0.50"}]
        assert api.post("/v1/plans", json={"code": "p", "currency": "USD", "charges": charges}).status_code == 201
        visible(api, "/v1/plans/p")
        assert api.post("/v1/plans/p/publish").status_code == 200
        start = iso(now() - timedelta(days=1))
        for customer, billing_type in (("acme", "prepaid"), ("globex", "postpaid")):
            body = {"id": customer, "currency": "USD", "billing_type": billing_type}
            assert api.post("/v1/customers", json=body).status_code == 201
            visible(api, f"/v1/customers/{customer}")
            sub = {"id": f"s-{customer}", "customer": customer, "plan": "p", "start": start}
            assert api.post("/v1/subscriptions", json=sub).status_code == 201
            visible(api, f"/v1/subscriptions/s-{customer}")
        r = api.post("/v1/customers/acme/credit-grants", json={"id": "cg_1", "amount": "1.50"})
        assert r.status_code == 201, r.text
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {ingest}"}, timeout=10) as gw:

            def serve(customer: str, n: int) -> list[tuple[bool, str | None]]:
                decisions = []
                for i in range(n):
                    r = gw.post("/v1/limits/check", json={"customer": customer})
                    assert r.status_code == 200, r.text
                    decisions.append((r.json()["allowed"], r.json()["reason"]))
                    if r.json()["allowed"]:
                        event = {
                            "id": f"{customer}-{i}-{time.monotonic_ns()}",
                            "customer": customer,
                            "type": "api_call",
                        }
                        assert gw.post("/v1/events", json=event).status_code == 202
                return decisions

            assert serve("acme", 5) == [(True, None)] * 3 + [(False, "credits_exhausted")] * 2
            r = api.post("/v1/customers/acme/credit-grants", json={"id": "cg_2", "amount": "0.50"})
            assert r.status_code == 201, r.text
            assert serve("acme", 2) == [(True, None), (False, "credits_exhausted")]
            assert serve("globex", 5) == [(True, None)] * 5
        assert api.get("/v1/customers/acme/credits").json()["ongoing_balance"] == "0.00"


@pytest.fixture
def folding_server(db_url: str, counters: str, redis_prefix: str) -> Iterator[LiveServer]:
    """A server whose own worker folds pending events into the counters every 0.1 s."""
    env = {"TOLLWAY_RUN_WORKER_IN_SERVE": "true", "TOLLWAY_ROLLUP_INTERVAL_SECONDS": "0.1"}
    if counters == "redis":
        env |= {"TOLLWAY_REDIS_URL": REDIS_URL, "TOLLWAY_REDIS_PREFIX": redis_prefix}
    live = start_server(db_url, extra_env=env)
    yield live
    stop_server(live)


@pytest.mark.e2e
def test_checks_stay_exact_while_the_worker_folds(folding_server: LiveServer) -> None:
    """Checks interleaved with events while the server's worker folds them into the counters:
    each event counts once whether it is read pending or folded, and the fold sends the
    ``limit.reached`` of the notify limit."""
    server = folding_server
    admin, ingest = server.key("admin"), server.key("ingest")
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {admin}"}, timeout=10) as api:
        meter = {"key": "api_calls", "event_type": "api_call", "aggregation": "count"}
        assert api.post("/v1/meters", json=meter).status_code == 201
        visible(api, "/v1/meters/api_calls")
        assert api.post("/v1/customers", json={"id": "acme"}).status_code == 201
        limits = [
            {"meter": "api_calls", "max": 30, "window": "day", "action": "block"},
            {"meter": "api_calls", "max": 10, "window": "day", "action": "notify"},
        ]
        plan = {"code": "p", "currency": "USD", "charges": CHARGES, "limits": limits}
        assert api.post("/v1/plans", json=plan).status_code == 201
        visible(api, "/v1/plans/p")
        assert api.post("/v1/plans/p/publish").status_code == 200
        visible(api, "/v1/customers/acme")
        sub = {"id": "s1", "customer": "acme", "plan": "p", "start": iso(now() - timedelta(days=1))}
        assert api.post("/v1/subscriptions", json=sub).status_code == 201
        visible(api, "/v1/subscriptions/s1")
    engine = make_engine(server.db_url)

    def pending() -> int:
        with engine.connect() as conn:
            return int(conn.execute(text(PENDING_COUNT_SQL)).scalar_one())

    folded_meanwhile = False
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {ingest}"}, timeout=10) as gw:
        decisions = []
        for i in range(36):
            r = gw.post("/v1/limits/check", json={"customer": "acme"})
            assert r.status_code == 200, r.text
            decisions.append(r.json()["allowed"])
            if r.json()["allowed"]:
                event = {"id": f"e{i}", "customer": "acme", "type": "api_call"}
                assert gw.post("/v1/events", json=event).status_code == 202
            time.sleep(0.02)
            folded_meanwhile = folded_meanwhile or (i > 0 and pending() == 0)
        assert decisions == [True] * 30 + [False] * 6
        deadline = time.monotonic() + 10
        while pending() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert pending() == 0 and folded_meanwhile  # the worker folded during the loop, and all of it after
        state = gw.post("/v1/limits/check", json={"customer": "acme", "quantity": "0"}).json()
        assert {x["used"] for x in state["limits"]} == {"30"}  # from the counters alone now
    with engine.connect() as conn:
        sent = conn.execute(text("SELECT payload FROM outbox WHERE topic = 'limit.reached'")).all()
    engine.dispose()
    payloads = [p if isinstance(p, dict) else json.loads(p) for (p,) in sent]
    assert sorted((p["action"], p["max"]) for p in payloads) == [("block", "30"), ("notify", "10")], payloads


def test_ended_windows_are_purged(db_url: str) -> None:
    engine = make_engine(db_url)
    factory = sessions(engine)
    t = now()
    d = dialect_for(engine.dialect.name)
    with session_scope(factory) as session:
        for i, end in enumerate((t - timedelta(hours=1), t + timedelta(hours=1))):
            session.execute(
                text(
                    "INSERT INTO limit_counters (customer, meter_key, window_kind, window_start, window_end, value) "
                    "VALUES (:c, 'm', 'hour', :s, :e, '1')"
                ),
                {"c": f"c{i}", "s": d.ts(end - timedelta(hours=1)), "e": d.ts(end)},
            )
    with session_scope(factory) as session:
        assert purge_ended(session, t) == 1
        assert session.execute(text("SELECT customer FROM limit_counters")).scalars().all() == ["c1"]
    engine.dispose()
