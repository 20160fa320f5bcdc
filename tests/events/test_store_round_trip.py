"""The PostgreSQL store sends a batch as one pipeline (BEGIN, lock, insert, COMMIT): a batch the
database refuses leaves nothing behind, and the pooled connection serves the next batch."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from tollway.db import make_engine
from tollway.event.ingest import IncomingEvent
from tollway.event.store import SqlEventStore

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def test_a_refused_batch_stores_nothing_and_the_next_one_goes_through(db_url: str, backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("SQLite stores a batch in an ordinary transaction (and does not enforce lengths)")
    engine = make_engine(db_url, pool_size=1, max_overflow=0)  # one connection: the next batch reuses it
    store = SqlEventStore(engine)
    try:
        too_long = IncomingEvent("x" * 201, "c", "t", NOW, {})  # past the column's 200 characters
        with pytest.raises(Exception):  # noqa: B017 - each database words it its own way
            store.store([IncomingEvent("a", "c", "t", NOW, {}), too_long], NOW)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM events")).scalar_one() == 0
        assert store.store([IncomingEvent("a", "c", "t", NOW, {})], NOW) == 1
        assert store.store([IncomingEvent("a", "c", "t", NOW, {}), IncomingEvent("b", "c", "t", NOW, {})], NOW) == 1
        with engine.connect() as conn:
            assert conn.execute(text("SELECT id FROM events ORDER BY id")).scalars().all() == ["a", "b"]
    finally:
        engine.dispose()
