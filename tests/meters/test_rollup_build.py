"""A meter created or changed while events exist gets its rollups built by the worker, off the
request: the request returns at once, usage stays exact meanwhile (raw reads), the build goes a
chunk of customers per transaction while ingestion continues, and the result equals the raw
events. Also through ``tollway rollups rebuild`` (progress bar) and a real ``tollway serve``."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from decimal import Decimal

import httpx
from sqlalchemy import func, select, text

from tests.conftest import start_server, stop_server
from tests.meters.test_rollups import apply_all, build_all
from tollway.db import make_engine, make_sessionmaker, session_scope
from tollway.kit.time import parse_rfc3339
from tollway.meter.definition import MeterDefinition
from tollway.meter.query import query_usage, usage_totals
from tollway.meter.rollup import BUILD_CHUNK, EVERY_CUSTOMER, build_step
from tollway.meter.service import get_meter
from tollway.migrations.runner import upgrade
from tollway.models import MeterRollup

METER = {"key": "calls", "event_type": "api_call", "aggregation": "sum", "value_property": "n", "group_by": ["ep"]}
FROM, TO = "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z"


def _events(customers: range, prefix: str, per: int = 2) -> list[dict]:  # type: ignore[type-arg]
    return [
        {
            "id": f"{prefix}-{c}-{i}",
            "customer": f"c{c:04d}",
            "type": "api_call",
            "timestamp": f"2026-01-{1 + (c + i) % 28:02d}T{(c * 7 + i) % 24:02d}:15:00Z",
            "properties": {"n": c % 7 + i, "ep": "/a" if (c + i) % 2 else "/b"},
        }
        for c in customers
        for i in range(per)
    ]


def _send(api, events: list[dict]) -> None:  # type: ignore[no-untyped-def,type-arg]
    for k in range(0, len(events), 1000):
        r = api.post("/v1/events", json={"events": events[k : k + 1000]})
        assert r.status_code == 202 and r.json()["errors"] == [], r.text


def _usage(session, customer: str | None, *, rollups: bool):  # type: ignore[no-untyped-def]
    meter = MeterDefinition.from_row(get_meter(session, "calls"))
    rows = query_usage(
        session,
        meter,
        start=parse_rfc3339(FROM),
        end=parse_rfc3339(TO),
        customer=customer,
        window="day",
        group_by=("ep",),
        use_rollups=rollups,
    )
    return [(u.start, u.groups, u.value) for u in rows]


def test_a_meter_on_existing_events_is_built_in_the_background(api, session_factory) -> None:  # type: ignore[no-untyped-def]
    customers = 2 * BUILD_CHUNK + 37  # three chunks
    _send(api, _events(range(customers), "old"))
    apply_all(session_factory)
    r = api.post("/v1/meters", json=METER)
    assert r.status_code == 201
    assert r.json()["rollups"] == {"status": "building", "customers_built": 0, "customers_total": None}
    with session_factory() as s:  # nothing built inside the request
        assert s.scalar(select(func.count()).select_from(MeterRollup).where(MeterRollup.meter_key == "calls")) == 0
    one = api.get("/v1/meters/calls/usage", params={"customer": "c0005", "from": FROM, "to": TO}).json()
    assert one["data"][0]["value"] == str(2 * (5 % 7) + 1)  # exact meanwhile: read from the raw events

    # The worker's first chunk; then ingestion goes on for built, unbuilt and new customers.
    with session_scope(session_factory) as s:
        assert build_step(s, "calls") is False
    state = api.get("/v1/meters/calls").json()["rollups"]
    assert state == {"status": "building", "customers_built": BUILD_CHUNK, "customers_total": customers}
    with session_factory() as s:  # the alerts' batch read is exact mid-build too (raw reads)
        meter = MeterDefinition.from_row(get_meter(s, "calls"))
        names = ["c0003", f"c{BUILD_CHUNK + 7:04d}"]
        spans = [(n, parse_rfc3339(FROM), parse_rfc3339(TO)) for n in names]
        expected = [sum((u[2] for u in _usage(s, n, rollups=False) if u[2] is not None), Decimal(0)) for n in names]
        assert usage_totals(s, meter, spans) == expected
    _send(api, _events(range(0, customers + 5, 3), "new", per=1))
    apply_all(session_factory)  # also adds the new events to the rows of customers already built
    assert build_all(session_factory) == 2
    _send(api, _events(range(1, customers, 5), "later", per=1))
    apply_all(session_factory)
    state = api.get("/v1/meters/calls").json()["rollups"]
    assert state["status"] == "ready" and state["customers_built"] == customers + 2  # c0237..c0241 joined

    with session_factory() as s:
        for c in (0, 1, 5, BUILD_CHUNK - 1, BUILD_CHUNK, customers - 1, customers + 2):
            name = f"c{c:04d}"
            assert _usage(s, name, rollups=True) == _usage(s, name, rollups=False), name
        assert _usage(s, None, rollups=True) == _usage(s, None, rollups=False)  # every customer
        rolled = select(func.sum(MeterRollup.event_count)).where(MeterRollup.meter_key == "calls")
        total_rolled = s.scalar(rolled.where(MeterRollup.customer != EVERY_CUSTOMER))
        total_every = s.scalar(rolled.where(MeterRollup.customer == EVERY_CUSTOMER))
    sent = 2 * customers + len(range(0, customers + 5, 3)) + len(range(1, customers, 5))
    assert total_rolled == sent  # every event counted once
    assert total_every == sent  # in the rows of every customer too


def test_changing_a_meter_rebuilds_it_and_drops_rows_that_no_longer_apply(api, session_factory) -> None:  # type: ignore[no-untyped-def]
    assert api.post("/v1/meters", json=METER).status_code == 201  # on an empty store: ready at once
    assert api.get("/v1/meters/calls").json()["rollups"]["status"] == "ready"
    _send(api, _events(range(10), "a"))
    _send(api, [e | {"type": "other", "id": e["id"] + "x"} for e in _events(range(10, 20), "b")])
    apply_all(session_factory)
    r = api.patch("/v1/meters/calls", json={"event_type": "other"})
    assert r.status_code == 200 and r.json()["rollups"]["status"] == "building"
    build_all(session_factory)
    with session_factory() as s:
        owners = set(s.scalars(select(MeterRollup.customer).where(MeterRollup.meter_key == "calls")))
        # The api_call customers' rows are gone.
        assert owners == {EVERY_CUSTOMER} | {f"c{c:04d}" for c in range(10, 20)}
        assert _usage(s, "c0012", rollups=True) == _usage(s, "c0012", rollups=False)


def test_cli_rebuild_shows_progress(api, db_url) -> None:  # type: ignore[no-untyped-def]
    assert api.post("/v1/meters", json=METER).status_code == 201
    _send(api, _events(range(BUILD_CHUNK + 3), "a", per=1))
    env = {**os.environ, "TOLLWAY_DATABASE_URL": db_url}
    out = subprocess.run(
        [sys.executable, "-m", "tollway", "rollups", "rebuild", "--meter", "calls"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert f"meter calls: {BUILD_CHUNK + 3}/{BUILD_CHUNK + 3} customers" in out.stderr  # no TTY: lines
    assert out.stderr.rstrip().endswith(f"meter calls: built for {BUILD_CHUNK + 3} customers")
    assert out.stdout.strip() == "rebuilt the rollups of 1 meter(s)"
    assert api.get("/v1/meters/calls").json()["rollups"] == {
        "status": "ready",
        "customers_built": BUILD_CHUNK + 3,
        "customers_total": BUILD_CHUNK + 3,
    }


def test_background_build_through_a_real_server(db_url) -> None:  # type: ignore[no-untyped-def]
    server = start_server(db_url, extra_env={"TOLLWAY_ROLLUP_INTERVAL_SECONDS": "0.2"})
    try:
        key = make_key_on(server)
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as api:
            _send(api, _events(range(150), "s"))
            started = time.monotonic()
            r = api.post("/v1/meters", json=METER)
            assert r.status_code == 201 and r.json()["rollups"]["status"] == "building"
            deadline = time.monotonic() + 60
            while api.get("/v1/meters/calls").json()["rollups"]["status"] != "ready":
                assert time.monotonic() < deadline, "the worker did not build the rollups"
                time.sleep(0.2)
            assert time.monotonic() - started < 60
            usage = api.get("/v1/meters/calls/usage", params={"customer": "c0003", "from": FROM, "to": TO}).json()
            assert usage["data"][0]["value"] == str(2 * (3 % 7) + 1)
    finally:
        stop_server(server)


def make_key_on(server) -> str:  # type: ignore[no-untyped-def]
    return server.cli("keys", "create", "--scope", "admin").strip().splitlines()[-1]


def test_upgrading_marks_meters_with_rollups_for_a_rebuild_of_every_customer(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Migration 0018: meters whose rollups lack the rows of every customer are rebuilt by the
    worker (read raw meanwhile); the build ends with those rows."""
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    upgrade(engine, "0017")
    now = "2026-01-05 10:00:00.000000"
    with engine.begin() as conn:
        for key, agg in (("calls", "count"), ("users", "unique_count"), ("idle", "count")):
            conn.execute(
                text(
                    "INSERT INTO meters (key, event_type, aggregation, filters, group_by, created_at, updated_at) "
                    "VALUES (:k, 'api_call', :a, '[]', '[]', :t, :t)"
                ),
                {"k": key, "a": agg, "t": now},
            )
        conn.execute(
            text(
                "INSERT INTO events (id, customer, type, timestamp, ingested_at, properties) "
                "VALUES ('e1', 'acme', 'api_call', :t, :t, '{}'), ('e2', 'globex', 'api_call', :t, :t, '{}')"
            ),
            {"t": now},
        )
        conn.execute(
            text(
                "INSERT INTO meter_rollups (meter_key, customer, bucket_start, group_key, event_count) "
                "VALUES ('calls', 'acme', :t, '[]', 1), ('calls', 'globex', :t, '[]', 1)"
            ),
            {"t": now},
        )
    upgrade(engine)
    with engine.connect() as conn:
        status = dict(conn.execute(text("SELECT key, rollup_status FROM meters")).all())
    assert status == {"calls": "building", "users": "ready", "idle": "ready"}
    factory = make_sessionmaker(engine)
    with session_scope(factory) as s:
        assert build_step(s, "calls") is True
    with factory() as s:
        rows = s.execute(
            select(MeterRollup.customer, MeterRollup.event_count).where(MeterRollup.meter_key == "calls")
        ).all()
        assert sorted(rows) == [(EVERY_CUSTOMER, 2), ("acme", 1), ("globex", 1)]
    engine.dispose()
