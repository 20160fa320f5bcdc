"""The events' ``ingested_at`` index: BRIN on PostgreSQL (migration 0025), its new page ranges
summarized by the worker after each rollup step, and left for the next step when the table's
lock is not granted at once; a B-tree on SQLite."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from tollway.db import make_engine, session_scope
from tollway.event.ingest import IncomingEvent
from tollway.event.store import SqlEventStore, summarize_new_pages
from tollway.worker import Worker

AT = datetime(2026, 11, 26, 12, tzinfo=UTC)


def _store(db_url: str, n: int, prefix: str = "e") -> None:
    engine = make_engine(db_url)
    try:
        events = [IncomingEvent(f"{prefix}{i:05d}", f"c{i % 7}", "api_call", AT, {"n": i}) for i in range(n)]
        store = SqlEventStore(engine)
        for i in range(0, n, 1000):
            store.store(events[i : i + 1000], AT)
    finally:
        engine.dispose()


def _index(db_url: str) -> tuple[str, list[str] | None]:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            row = conn.execute(
                text(
                    "SELECT am.amname, c.reloptions FROM pg_class c JOIN pg_am am ON am.oid = c.relam "
                    "WHERE c.relname = 'ix_events_ingested_at'"
                )
            ).one()
    finally:
        engine.dispose()
    return str(row[0]), row[1]


def test_the_index_is_brin_on_postgresql(backend: str, db_url: str, session_factory) -> None:  # type: ignore[no-untyped-def]
    if backend == "sqlite":  # a B-tree: nothing to summarize
        with session_scope(session_factory) as session:
            assert summarize_new_pages(session) is None
        return
    method, options = _index(db_url)
    assert method == "brin"
    assert options == ["pages_per_range=32"]  # no autosummarize: see migration 0025


def test_the_worker_summarizes_what_was_stored(backend: str, db_url: str, settings, session_factory) -> None:  # type: ignore[no-untyped-def]
    if backend == "sqlite":
        pytest.skip("PostgreSQL only: SQLite's index is a B-tree")
    _store(db_url, 3000)
    Worker(session_factory, settings).rollup_step()
    with session_scope(session_factory) as session:  # nothing left: every full range is summarized
        assert session.execute(text("SELECT brin_summarize_new_values('ix_events_ingested_at')")).scalar_one() == 0
        # Reads by ingestion time find every event, summarized or not.
        after = AT - timedelta(days=1)
        found = session.execute(text("SELECT count(*) FROM events WHERE ingested_at > :t"), {"t": after}).scalar_one()
    assert found == 3000


def test_a_held_table_lock_leaves_the_summary_for_later(backend: str, db_url: str, session_factory) -> None:  # type: ignore[no-untyped-def]
    if backend == "sqlite":
        pytest.skip("PostgreSQL only: SQLite's index is a B-tree")
    _store(db_url, 3000)
    engine = make_engine(db_url)
    held, release = threading.Event(), threading.Event()

    def hold() -> None:  # as a VACUUM of the table would
        with engine.begin() as conn:
            conn.execute(text("LOCK TABLE events IN SHARE UPDATE EXCLUSIVE MODE"))
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(10)
        with session_scope(session_factory) as session:
            assert summarize_new_pages(session) is None
            # The transaction goes on, its lock timeout back to the default.
            assert session.execute(text("SHOW lock_timeout")).scalar_one() == "0"
            assert session.execute(text("SELECT count(*) FROM events")).scalar_one() == 3000
    finally:
        release.set()
        holder.join()
        engine.dispose()
    with session_scope(session_factory) as session:  # once the lock is free, done
        assert summarize_new_pages(session) is not None
        assert session.execute(text("SELECT brin_summarize_new_values('ix_events_ingested_at')")).scalar_one() == 0
