"""``rollup_pending.customer``: set by ingestion, backfilled by its migration for the events
pending when it runs, and what a check finds its customer's pending events by."""

from __future__ import annotations

from alembic import command
from sqlalchemy import text

from tollway.db import make_engine
from tollway.migrations.runner import alembic_config


def test_the_migration_backfills_the_pending_events_customers(backend, db_url) -> None:  # type: ignore[no-untyped-def]
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
                    "VALUES ('e1', 'acme', 'api_call', :t, :t, '{}'), ('e2', 'globex', 'api_call', :t, :t, '{}')"
                ),
                {"t": "2026-11-25 12:00:00"},
            )
            conn.execute(text("INSERT INTO rollup_pending (event_id) VALUES ('e1'), ('e2')"))
    finally:
        with engine.begin() as conn:  # leave the database as the other tests expect it
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT event_id, customer FROM rollup_pending ORDER BY event_id")).all()
    engine.dispose()
    assert [tuple(r) for r in rows] == [("e1", "acme"), ("e2", "globex")]


def test_ingestion_notes_each_pending_events_customer(api, counters) -> None:  # type: ignore[no-untyped-def]
    r = api.post("/v1/meters", json={"key": "calls", "event_type": "api_call", "aggregation": "count"})
    assert r.status_code == 201, r.text
    events = [{"id": f"e{i}", "customer": f"c{i % 2}", "type": "api_call"} for i in range(4)]
    events.append({"id": "x", "customer": "c0", "type": "unmetered"})
    r = api.post("/v1/events", json={"events": events})
    assert r.status_code == 202, r.text
    engine = api.app.state.engine
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT event_id, customer FROM rollup_pending ORDER BY event_id")).all()
    assert [tuple(r) for r in rows] == [("e0", "c0"), ("e1", "c1"), ("e2", "c0"), ("e3", "c1")]
