"""Finding a customer's pending events: ``rollup_pending.customer`` backfilled by its migration
(0019) for the events pending when it ran, then (0022) ``events.tx`` and the watermark instead of
``rollup_pending``, the events pending at that upgrade still pending, and ingestion marking
exactly the metered events of each customer."""

from __future__ import annotations

from alembic import command
from sqlalchemy import text

from tollway.db import make_engine
from tollway.meter.sql import pending
from tollway.migrations.runner import alembic_config

_PENDING = f"SELECT e.id, e.customer FROM events e WHERE {pending('e')} ORDER BY e.id"


def test_the_migrations_keep_the_pending_events_and_their_customers(backend, db_url) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(db_url)
    cfg = alembic_config()
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0018")
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO events (id, customer, type, timestamp, ingested_at, properties) "
                    "VALUES ('e1', 'acme', 'api_call', :t, :t, '{}'), ('e2', 'globex', 'api_call', :t, :t, '{}'), "
                    "('e3', 'acme', 'api_call', :t, :t, '{}')"
                ),
                {"t": "2026-11-25 12:00:00"},
            )
            conn.execute(text("INSERT INTO rollup_pending (event_id) VALUES ('e1'), ('e2')"))  # e3: folded
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0019")
        with engine.connect() as conn:
            backfilled = conn.execute(text("SELECT event_id, customer FROM rollup_pending ORDER BY event_id")).all()
    finally:
        with engine.begin() as conn:  # leave the database as the other tests expect it
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
    with engine.connect() as conn:
        still_pending = conn.execute(text(_PENDING)).all()
        watermark = conn.execute(text("SELECT next_tx FROM rollup_watermark")).all()
    engine.dispose()
    assert [tuple(r) for r in backfilled] == [("e1", "acme"), ("e2", "globex")]
    assert [tuple(r) for r in still_pending] == [("e1", "acme"), ("e2", "globex")]
    assert [tuple(r) for r in watermark] == [(0,)]


def test_ingestion_marks_each_metered_event_pending(api, counters) -> None:  # type: ignore[no-untyped-def]
    r = api.post("/v1/meters", json={"key": "calls", "event_type": "api_call", "aggregation": "count"})
    assert r.status_code == 201, r.text
    events = [{"id": f"e{i}", "customer": f"c{i % 2}", "type": "api_call"} for i in range(4)]
    events.append({"id": "x", "customer": "c0", "type": "unmetered"})
    r = api.post("/v1/events", json={"events": events})
    assert r.status_code == 202, r.text
    engine = api.app.state.engine
    with engine.connect() as conn:
        rows = conn.execute(text(_PENDING)).all()
        unmetered = conn.execute(text("SELECT tx FROM events WHERE id = 'x'")).scalar_one()
    assert [tuple(r) for r in rows] == [("e0", "c0"), ("e1", "c1"), ("e2", "c0"), ("e3", "c1")]
    assert unmetered is None
