"""The SQL event store: the source of truth for usage. Append-only, unique on event id.

Storing a batch also marks, in the same statement, the events some folded meter counts as
pending: their ``tx`` is the storing transaction (``meter.sql.pending``); the worker later adds
them to the meters' hourly rollups in bulk (``meter.rollup``), and the limits' counters with them
(``limit.keeper``). Queries and limit checks count pending events raw, so nothing waits for the
worker.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from time import monotonic
from typing import Any

import msgspec
import psycopg
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import text
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from tollway.db import async_pool, is_postgres, pooled_driver_connection
from tollway.event.ingest import IncomingEvent
from tollway.meter import rollup
from tollway.meter.definition import MeterDefinition
from tollway.models import Event

_Status = psycopg.pq.TransactionStatus
_encode = msgspec.json.Encoder().encode

CONFLICT_HOLD_SECONDS = 10.0
"""After a batch met an id stored already, how long this store sends every batch with
``ON CONFLICT`` straight away (retries tend to come in runs)."""


class SqlEventStore:
    """Stores events in the ``events`` table in one transaction per batch.

    PostgreSQL: one network round trip per batch, on a pooled connection of the engine
    (:meth:`store`, in a thread) or of its asyncio pool (:meth:`store_async`, on the event loop:
    the API's ingestion, measured in BENCHMARKS.md), the same statements either way. ``BEGIN``,
    the shared rollup lock, the insert and ``COMMIT`` go to the server together (a psycopg
    pipeline on an autocommit connection), so
    the protocol of ``meter.rollup`` holds unchanged: the insert runs after the lock is granted,
    reads the meters then (``type IN (SELECT event_type FROM meters …)``, not a look-up from
    Python before), stamps ``ingested_at`` with the database's clock at that moment
    (``clock_timestamp()``, as ``db.database_now``) and ``tx`` of the metered events with the
    transaction's id (``pg_current_xact_id()``, assigned by this statement, so after the lock:
    ``fold.apply_pending`` relies on it). The insert is one statement, ``INSERT … SELECT FROM
    jsonb_to_recordset(batch)``; its row count is the number stored. The unique index decides
    duplicates, also under concurrent retries of the same batch; rows go in in id order, so
    overlapping batches sent concurrently in different orders never deadlock.

    Duplicates are rare (a client's retry), and ``ON CONFLICT (id) DO NOTHING`` costs every row a
    speculative insertion: a probe of the unique index before the row goes in, and a second step
    to confirm it (about 14 % of the insert's CPU, BENCHMARKS.md). So a batch is first
    stored by a plain ``INSERT``; when the unique index refuses one of its ids (the transaction
    then stores nothing), the batch is stored again by the statement with ``ON CONFLICT (id) DO
    NOTHING``, which skips the ids stored already. After a refusal, this store sends
    ``ON CONFLICT`` at once for ``CONFLICT_HOLD_SECONDS``: a client that keeps retrying costs
    one statement per batch, not two.
    SQLite (one writer at a time): ``INSERT … ON CONFLICT DO NOTHING RETURNING id``, the metered
    events' ``tx`` one more than any stored (and not below the watermark).
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.postgres = engine.dialect.name == "postgresql"
        self._insert_sql = _postgres_insert_sql(on_conflict=False)
        self._insert_skipping_sql = _postgres_insert_sql(on_conflict=True)
        self._skip_until = 0.0  # monotonic() until which batches go with ON CONFLICT at once
        # The text[] parameter as PostgreSQL's array literal, made once: psycopg would otherwise
        # inspect and dump the list on every batch.
        self._folded = _text_array(sorted(rollup.FOLDED_AGGREGATIONS))

    def store(self, events: Sequence[IncomingEvent], ingested_at: datetime) -> int:
        if not events:
            return 0
        if self.postgres:
            return self._store_postgres(events)
        with self.engine.begin() as conn:
            meters = rollup.load_meters(conn, {e.type for e in events})
            return self._store_sqlite(conn, events, ingested_at, meters)

    def awaits_here(self) -> bool:
        """Whether :meth:`store_async` awaits the database on the running event loop (PostgreSQL
        with the engine's :class:`~tollway.db.AsyncDriverPool` open on it), not in a thread."""
        return self.postgres and async_pool(self.engine) is not None

    async def store_async(self, events: Sequence[IncomingEvent], ingested_at: datetime) -> int:
        """:meth:`store` for the event loop: the same statements on PostgreSQL, awaited on the
        engine's asyncio pool; otherwise :meth:`store` in the threadpool."""
        if not events:
            return 0
        pool = async_pool(self.engine) if self.postgres else None
        if pool is None:
            return await run_in_threadpool(self.store, events, ingested_at)
        params = self._params(events)
        async with pool.connection() as driver:
            if not self._holding():
                try:
                    return await _insert_async(driver, self._insert_sql, params)
                except psycopg.errors.UniqueViolation:  # an id is stored already: nothing of the batch is
                    self._hold()
            return await _insert_async(driver, self._insert_skipping_sql, params)

    def _store_postgres(self, events: Sequence[IncomingEvent]) -> int:
        # The batch travels as one JSON document that PostgreSQL unpacks itself: msgspec encodes
        # the events as they are (``IncomingEvent``'s keys are the document's), no per-row work
        # is left in Python.
        params = self._params(events)
        # The driver's connection straight from the pool, in autocommit: the transaction is the
        # pipeline's own BEGIN … COMMIT.
        with pooled_driver_connection(self.engine) as driver:
            assert isinstance(driver, psycopg.Connection)
            if not self._holding():
                try:
                    return _insert(driver, self._insert_sql, params)
                except psycopg.errors.UniqueViolation:  # an id is stored already: nothing of the batch is
                    self._hold()
            return _insert(driver, self._insert_skipping_sql, params)

    def _holding(self) -> bool:
        """Whether batches go with ON CONFLICT at once (an id was refused lately)."""
        return monotonic() < self._skip_until

    def _hold(self) -> None:
        self._skip_until = monotonic() + CONFLICT_HOLD_SECONDS

    def _params(self, events: Sequence[IncomingEvent]) -> dict[str, str]:
        """The insert statements' parameters for ``events``."""
        return {"batch": _encode(events).decode(), "folded": self._folded}

    def _store_sqlite(
        self, conn: Connection, events: Sequence[IncomingEvent], ingested_at: datetime, meters: list[MeterDefinition]
    ) -> int:
        stmt = sqlite_insert(Event).on_conflict_do_nothing(index_elements=["id"]).returning(Event.id)
        metered_types = {m.event_type for m in meters}
        tx = None
        if metered_types & {e.type for e in events}:
            tx = conn.execute(text(_SQLITE_NEXT_TX)).scalar_one()
        rows = [
            {
                "id": e.id,
                "customer": e.customer,
                "type": e.type,
                "timestamp": e.timestamp,
                "ingested_at": ingested_at,
                "properties": e.properties,
                "voided_at": None,
                "tx": tx if e.type in metered_types else None,
            }
            for e in events
        ]
        return len(conn.execute(stmt, rows).all())


def _text_array(values: list[str]) -> str:
    """PostgreSQL's literal of a text[] holding ``values`` (each quoted, ``"`` and ``\\`` escaped)."""
    quoted = ('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values)
    return "{" + ",".join(quoted) + "}"


def _insert(driver: psycopg.Connection, sql: str, params: dict[str, str]) -> int:
    """Run ``sql`` in its own transaction behind the shared rollup lock, in one round trip; the
    number of rows it inserted. A statement that fails leaves the connection out of any
    transaction."""
    try:
        with driver.cursor() as cur, driver.cursor() as insert:
            with driver.pipeline():  # sent together, one sync at the end: one round trip
                # BEGIN and COMMIT never as prepared statements: psycopg (3.3.9) would prepare
                # COMMIT after a few batches, and when it is skipped in a pipeline an insert
                # aborted, psycopg still counts it as prepared; from the third refused batch on
                # a connection, the pipeline failed with "prepared statement … does not exist".
                cur.execute("BEGIN", prepare=False)
                cur.execute(rollup.LOCK_SHARED_SQL, {"k": rollup.ROLLUP_LOCK})
                insert.execute(sql, params)
                cur.execute("COMMIT", prepare=False)
            return insert.rowcount  # the rows inserted (with ON CONFLICT: those not skipped)
    except BaseException:
        if driver.info.transaction_status in (_Status.INTRANS, _Status.INERROR):  # the statement failed
            driver.execute("ROLLBACK")
        raise


async def _insert_async(driver: psycopg.AsyncConnection[Any], sql: str, params: dict[str, str]) -> int:
    """:func:`_insert` on an asyncio connection."""
    try:
        async with driver.cursor() as cur, driver.cursor() as insert:
            async with driver.pipeline():
                await cur.execute("BEGIN", prepare=False)
                await cur.execute(rollup.LOCK_SHARED_SQL, {"k": rollup.ROLLUP_LOCK})
                await insert.execute(sql, params)
                await cur.execute("COMMIT", prepare=False)
            return insert.rowcount
    except BaseException:
        if driver.info.transaction_status in (_Status.INTRANS, _Status.INERROR):
            await driver.execute("ROLLBACK")
        raise


def _postgres_insert_sql(*, on_conflict: bool) -> str:
    return (
        "WITH at AS MATERIALIZED (SELECT clock_timestamp() AT TIME ZONE 'UTC' AS t, "
        # xid8 has no cast to bigint; its text is the 64-bit number (epoch and xid: it never wraps)
        "CAST(CAST(pg_current_xact_id() AS text) AS bigint) + (SELECT tx_base FROM rollup_watermark) AS x) "
        "INSERT INTO events (id, customer, type, timestamp, ingested_at, properties, tx) "
        "SELECT b.id, b.c, b.t, b.ts AT TIME ZONE 'UTC', at.t, b.p, "
        "CASE WHEN b.t IN (SELECT event_type FROM meters WHERE aggregation = ANY(CAST(%(folded)s AS text[]))) "
        "THEN at.x END "
        # jsonb: the document is parsed once, and each event's properties are taken from it as
        # they are stored; json_to_recordset would lex the document and then parse every
        # properties object again as text (bench/store.py).
        "FROM jsonb_to_recordset(CAST(%(batch)s AS jsonb)) AS b(id text, c text, t text, ts timestamptz, p jsonb) "
        "CROSS JOIN at "
        # In id order: concurrent batches that share ids then take the unique index's
        # locks in the same order and wait for each other instead of deadlocking.
        "ORDER BY b.id" + (" ON CONFLICT (id) DO NOTHING" if on_conflict else "")
    )


SUMMARIZE_LOCK_TIMEOUT = "200ms"
"""How long :func:`summarize_new_pages` waits for the table's lock before leaving it for later."""


def summarize_new_pages(conn: Connection | Session) -> int | None:
    """PostgreSQL: summarize the page ranges of ``events`` written since the last call in the
    BRIN index on ``ingested_at`` (migration 0025), in the caller's transaction; the number of
    ranges summarized. A query reads a range not summarized yet whole, so this bounds what the
    reads of recent ingestion scan; it reads only the new pages. None on SQLite (a B-tree there),
    and when the lock it takes (``SHARE UPDATE EXCLUSIVE``: inserts go on, a ``VACUUM`` of the
    table holds it) is not granted within :data:`SUMMARIZE_LOCK_TIMEOUT`: the next call does it."""
    if not is_postgres(conn):
        return None
    conn.execute(text(f"SET LOCAL lock_timeout = '{SUMMARIZE_LOCK_TIMEOUT}'"))
    try:
        with conn.begin_nested():
            return int(conn.execute(text("SELECT brin_summarize_new_values('ix_events_ingested_at')")).scalar_one())
    except OperationalError as exc:
        if isinstance(exc.orig, psycopg.errors.LockNotAvailable):
            return None
        raise
    finally:
        conn.execute(text("SET LOCAL lock_timeout = DEFAULT"))


# SQLite serializes writers (BEGIN IMMEDIATE): every stored tx is below this one, and a fold has
# moved the watermark past no tx of a batch not stored yet.
_SQLITE_NEXT_TX = (
    "SELECT max(coalesce((SELECT max(tx) FROM events) + 1, 0), (SELECT next_tx FROM rollup_watermark))"
)
