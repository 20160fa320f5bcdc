"""The PostgreSQL store sends a batch as one pipeline (BEGIN, lock, insert, COMMIT): a batch the
database refuses leaves nothing behind, and the pooled connection serves the next batch; a batch
holding an id stored already is stored again with ON CONFLICT, which skips it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import psycopg
import pytest
from psycopg.pq import TransactionStatus
from sqlalchemy import text

from tollway.db import close_async_pool, make_engine, open_async_pool
from tollway.event import store as store_module
from tollway.event.ingest import IncomingEvent
from tollway.event.store import SqlEventStore, _text_array
from tollway.meter.rollup import FOLDED_AGGREGATIONS

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


def test_the_folded_aggregations_reach_postgresql_as_the_same_list(backend: str, db_url: str) -> None:
    """The store sends the folded aggregations as a text[] literal it makes once: PostgreSQL
    reads it back as the list, whatever characters a name holds."""
    if backend != "postgresql":
        pytest.skip("the literal is PostgreSQL's")
    names = [*sorted(FOLDED_AGGREGATIONS), 'a"b', "c\\d", "x,y", "{z}", "", "NULL"]
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT CAST(%s AS text[])", (_text_array(names),)).fetchone()
    assert row is not None and row[0] == names


def test_the_store_hands_its_connection_back_as_it_took_it(backend: str, db_url: str) -> None:
    """Stored or refused, a batch leaves the pooled connection out of autocommit with no
    transaction open, as the pool hands connections out."""
    if backend != "postgresql":
        pytest.skip("the PostgreSQL store uses the driver's connection")
    engine = make_engine(db_url, pool_size=1, max_overflow=0)
    store = SqlEventStore(engine)
    try:
        for batch in ([IncomingEvent("a", "c", "t", NOW, {})], [IncomingEvent("x" * 201, "c", "t", NOW, {})]):
            try:
                store.store(batch, NOW)
            except Exception:  # the refused batch: only the connection matters here
                pass
            with engine.connect() as conn:
                driver = conn.connection.driver_connection
                assert isinstance(driver, psycopg.Connection)
                assert driver.autocommit is False and driver.info.transaction_status == TransactionStatus.IDLE
                conn.execute(text("SELECT 1"))
                assert conn.in_transaction()
    finally:
        engine.dispose()


def test_a_batch_goes_in_plain_and_after_a_stored_id_with_on_conflict_for_a_while(
    backend: str, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first statement for a batch is a plain insert; an id stored already makes the store
    send the batch again with ON CONFLICT, which skips it, and send later batches with ON
    CONFLICT at once until CONFLICT_HOLD_SECONDS have passed."""
    if backend != "postgresql":
        pytest.skip("SQLite inserts with ON CONFLICT in an ordinary transaction")
    sent: list[bool] = []
    insert = store_module._insert

    def spy(driver: psycopg.Connection, sql: str, params: dict[str, str]) -> int:
        sent.append("ON CONFLICT" in sql)
        return insert(driver, sql, params)

    clock = [1000.0]
    monkeypatch.setattr(store_module, "_insert", spy)
    monkeypatch.setattr(store_module, "monotonic", lambda: clock[0])
    engine = make_engine(db_url, pool_size=1, max_overflow=0)
    store = SqlEventStore(engine)

    def event(i: str) -> IncomingEvent:
        return IncomingEvent(i, "c", "t", NOW, {})

    try:
        assert store.store([event("a"), event("b")], NOW) == 2
        assert sent == [False]
        assert store.store([event("c"), event("b"), event("d")], NOW) == 2  # b is stored already
        assert sent == [False, False, True]
        clock[0] += store_module.CONFLICT_HOLD_SECONDS - 1
        assert store.store([event("e")], NOW) == 1
        assert sent[3:] == [True]
        clock[0] += 1
        assert store.store([event("f"), event("a")], NOW) == 1
        assert sent[4:] == [False, True]
        with engine.connect() as conn:
            ids = conn.execute(text("SELECT id FROM events ORDER BY id")).scalars().all()
        assert ids == ["a", "b", "c", "d", "e", "f"]
    finally:
        engine.dispose()


def test_a_client_retrying_the_same_batch_for_minutes_gets_the_same_answer(
    backend: str, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch resent after every ON CONFLICT hold has passed: each time a plain insert the
    unique index refuses, then the insert with ON CONFLICT, on the same pooled connection.
    psycopg prepares a statement after its fifth run; before BEGIN and COMMIT were sent
    unprepared, the third refusal failed with "prepared statement _pg3_2 does not exist"."""
    if backend != "postgresql":
        pytest.skip("SQLite inserts with ON CONFLICT in an ordinary transaction")
    clock = [1000.0]
    monkeypatch.setattr(store_module, "monotonic", lambda: clock[0])
    engine = make_engine(db_url, pool_size=1, max_overflow=0)
    store = SqlEventStore(engine)
    batch = [IncomingEvent("a", "c", "t", NOW, {})]
    try:
        assert store.store(batch, NOW) == 1
        for _ in range(12):
            clock[0] += store_module.CONFLICT_HOLD_SECONDS
            assert store.store(batch, NOW) == 0
        assert store.store([IncomingEvent("b", "c", "t", NOW, {})], NOW) == 1
    finally:
        engine.dispose()


def test_the_asyncio_store_answers_as_the_threaded_one(backend: str, db_url: str) -> None:
    """``store_async`` on the asyncio pool (the API's path on PostgreSQL): a refused batch stores
    nothing and the connection serves the next; ids stored already are skipped, also when the
    same batch comes back after every ON CONFLICT hold."""
    if backend != "postgresql":
        pytest.skip("SQLite's store_async is store() in a thread")

    async def main() -> list[int]:
        engine = make_engine(db_url, pool_size=1, max_overflow=0)
        store = SqlEventStore(engine)
        try:
            await open_async_pool(engine)
            assert store.awaits_here()
            too_long = IncomingEvent("x" * 201, "c", "t", NOW, {})
            with pytest.raises(psycopg.errors.StringDataRightTruncation):
                await store.store_async([IncomingEvent("a", "c", "t", NOW, {}), too_long], NOW)
            counts = [await store.store_async([IncomingEvent("a", "c", "t", NOW, {})], NOW)]
            pair = [IncomingEvent("a", "c", "t", NOW, {}), IncomingEvent("b", "c", "t", NOW, {})]
            counts.append(await store.store_async(pair, NOW))
            for _ in range(6):
                store._skip_until = 0.0  # the hold has passed: plain insert first again
                counts.append(await store.store_async(pair, NOW))
            return counts
        finally:
            await close_async_pool(engine)
            assert not store.awaits_here()
            engine.dispose()

    assert asyncio.run(main()) == [1, 1, 0, 0, 0, 0, 0, 0]
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT id FROM events ORDER BY id")).scalars().all() == ["a", "b"]
    finally:
        engine.dispose()
