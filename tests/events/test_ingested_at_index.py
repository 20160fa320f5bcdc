"""Migration 0022: ``events.ingested_at`` is a BRIN index on PostgreSQL (a B-tree on SQLite), and
the forecast's "ingested since" still finds exactly the customers with new events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alembic import command
from sqlalchemy import text
from sqlalchemy.engine import Engine

from tollway.db import database_now, make_engine, make_sessionmaker, session_scope
from tollway.event.ingest import IncomingEvent
from tollway.event.store import SqlEventStore
from tollway.invoice import forecast
from tollway.migrations.runner import alembic_config, upgrade
from tollway.models import Customer, UpcomingTotal


def _method(engine: Engine) -> str | None:
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            sql = (
                "SELECT am.amname FROM pg_class c JOIN pg_am am ON am.oid = c.relam "
                "WHERE c.relname = 'ix_events_ingested_at'"
            )
        else:
            sql = "SELECT 'btree' FROM sqlite_master WHERE type = 'index' AND name = 'ix_events_ingested_at'"
        value = conn.execute(text(sql)).scalar()
        return str(value) if value is not None else None


def _downgrade(engine: Engine, revision: str) -> None:
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def test_ingested_at_index_is_brin_on_postgresql_and_back_on_downgrade(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        postgres = engine.dialect.name == "postgresql"
        assert _method(engine) == ("brin" if postgres else "btree")
        _downgrade(engine, "0021")
        assert _method(engine) == "btree"
        upgrade(engine)
        assert _method(engine) == ("brin" if postgres else "btree")
    finally:
        engine.dispose()


def test_forecast_finds_the_customers_ingested_since_the_previous_refresh(db_url: str) -> None:
    engine = make_engine(db_url)
    factory = make_sessionmaker(engine)
    store = SqlEventStore(engine)
    now = datetime.now(UTC)
    try:
        with session_scope(factory) as s:
            for cid in ("a", "b", "c"):
                s.add(Customer(id=cid, created_at=now, updated_at=now))
        store.store([IncomingEvent(f"{c}-1", c, "t", now, {}) for c in ("a", "b")], now)
        with session_scope(factory) as s:  # as a previous refresh leaves it
            s.add(UpcomingTotal(customer_id="a", computed_at=now, events_seen_until=_clock(factory)))
        # ingested_at: the database's clock (PostgreSQL), or the one passed (SQLite, as the API does)
        store.store([IncomingEvent("c-1", "c", "t", now, {})], datetime.now(UTC))
        with factory() as s:
            assert forecast.due_customers(s, now=now, overlap=timedelta(0)) == ["c"]
            # With the overlap, the earlier events count again (recomputing twice is harmless).
            assert forecast.due_customers(s, now=now, overlap=timedelta(hours=1)) == ["a", "b", "c"]
    finally:
        engine.dispose()


def _clock(factory) -> datetime:  # type: ignore[no-untyped-def]
    with factory() as s:
        return database_now(s)
