"""The SQL event store: the source of truth for usage. Append-only, unique on event id.

Storing a batch also notes, in the same transaction, which of its events some meter counts
(``rollup_pending``); the worker later adds them to the meters' hourly rollups in bulk
(``meter.rollup``). Queries count pending events raw, so nothing waits for the worker.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson
from sqlalchemy import text
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine

from tollway.db import database_now
from tollway.event.ingest import IncomingEvent
from tollway.meter import rollup
from tollway.meter.definition import MeterDefinition
from tollway.meter.sql import Dialect, dialect_for
from tollway.models import Event


class CountedBatch(Protocol):
    """What a :class:`BatchObserver` wants counted of a batch (the limits' counters)."""

    def rows_sql(self, d: Dialect, source: str) -> str | None:
        """SQL over the batch's inserted events (``source``, aliased ``e``) selecting rows to
        hand to :meth:`count`; ``None`` when none can match."""
        ...

    def count(self, conn: Connection, rows: Sequence[Sequence[Any]], now: datetime) -> Callable[[], None] | None:
        """Called inside the batch's transaction; may return how to undo it if the commit fails."""
        ...


class BatchObserver(Protocol):
    def prepare(self, conn: Connection, customers: set[str], meters: list[MeterDefinition]) -> CountedBatch | None: ...


def _naive_utc(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None)


class SqlEventStore:
    """Stores events in the ``events`` table in one transaction per batch.

    PostgreSQL: one statement per batch — ``INSERT … SELECT FROM json_to_recordset(batch) ON
    CONFLICT (id) DO NOTHING RETURNING …`` in a CTE, and the metered ones of the inserted ids into
    ``rollup_pending``. The unique index decides duplicates, also under concurrent retries of the
    same batch; rows go in in id order, so overlapping batches sent concurrently in different
    orders never deadlock. SQLite: ``INSERT … ON CONFLICT DO NOTHING RETURNING id``, then the pending ids.
    """

    def __init__(self, engine: Engine, observer: BatchObserver | None = None) -> None:
        self.engine = engine
        self.postgres = engine.dialect.name == "postgresql"
        self.observer = observer

    def store(self, events: Sequence[IncomingEvent], ingested_at: datetime) -> int:
        if not events:
            return 0
        undo: list[Callable[[], None]] = []
        try:
            with self.engine.begin() as conn:
                rollup.lock_shared(conn)
                if self.postgres:  # the database's clock, not this host's (db.database_now)
                    ingested_at = database_now(conn)
                meters = rollup.load_meters(conn, {e.type for e in events})
                counted = None
                if self.observer is not None and meters:
                    types = {m.event_type for m in meters}
                    counted = self.observer.prepare(conn, {e.customer for e in events if e.type in types}, meters)
                if self.postgres:
                    stored, rows = self._store_postgres(conn, events, ingested_at, meters, counted)
                else:
                    stored, rows = self._store_sqlite(conn, events, ingested_at, meters, counted)
                if counted is not None and rows:
                    step = counted.count(conn, rows, ingested_at)
                    if step is not None:
                        undo.append(step)
                return stored
        except BaseException:
            for step in undo:  # the batch did not commit: take it off the counters again
                step()
            raise

    def _store_postgres(
        self,
        conn: Connection,
        events: Sequence[IncomingEvent],
        ingested_at: datetime,
        meters: list[MeterDefinition],
        counted: CountedBatch | None,
    ) -> tuple[int, list[Any]]:
        # The batch travels as one JSON document that PostgreSQL unpacks itself: orjson encodes it
        # in C, and no per-row work is left in Python.
        d = dialect_for("postgresql")
        payload = orjson.dumps(
            [{"id": e.id, "c": e.customer, "t": e.type, "ts": e.timestamp, "p": e.properties} for e in events]
        ).decode()
        ctes = [
            "ins AS (INSERT INTO events (id, customer, type, timestamp, ingested_at, properties) "
            f"SELECT b.id, b.c, b.t, b.ts AT TIME ZONE 'UTC', {d.bind(_naive_utc(ingested_at))}, b.p "
            f"FROM json_to_recordset(CAST({d.bind(payload)} AS json)) "
            "AS b(id text, c text, t text, ts timestamptz, p jsonb) "
            # In id order: concurrent batches that share ids then take the unique index's
            # locks in the same order and wait for each other instead of deadlocking.
            "ORDER BY b.id "
            "ON CONFLICT (id) DO NOTHING RETURNING id, customer, type, timestamp, properties, voided_at)"
        ]
        if meters:
            types = d.bind(sorted({m.event_type for m in meters}))
            ctes.append(
                "pend AS (INSERT INTO rollup_pending (event_id) "
                f"SELECT id FROM ins WHERE type = ANY(CAST({types} AS text[])))"
            )
        limited = counted.rows_sql(d, "ins") if counted is not None else None
        if limited is None:
            sql = f"WITH {', '.join(ctes)} SELECT count(*) FROM ins"
            return int(conn.execute(text(sql), d.params).scalar_one()), []
        # The rows the limits count come back with the count (the first row, without a meter).
        ctes.append(f"lim AS ({limited})")
        sql = (
            f"WITH {', '.join(ctes)} SELECT CAST(NULL AS text), CAST(NULL AS text), CAST(NULL AS timestamp), "
            "CAST(count(*) AS numeric) FROM ins UNION ALL SELECT mk, customer, ts, v FROM lim"
        )
        rows = conn.execute(text(sql), d.params).all()
        stored = next(int(r[3]) for r in rows if r[0] is None)
        return stored, [r for r in rows if r[0] is not None]

    def _store_sqlite(
        self,
        conn: Connection,
        events: Sequence[IncomingEvent],
        ingested_at: datetime,
        meters: list[MeterDefinition],
        counted: CountedBatch | None,
    ) -> tuple[int, list[Any]]:
        stmt = sqlite_insert(Event).on_conflict_do_nothing(index_elements=["id"]).returning(Event.id)
        rows = [
            {
                "id": e.id,
                "customer": e.customer,
                "type": e.type,
                "timestamp": e.timestamp,
                "ingested_at": ingested_at,
                "properties": e.properties,
                "voided_at": None,
            }
            for e in events
        ]
        inserted = [r[0] for r in conn.execute(stmt, rows)]
        metered_types = {m.event_type for m in meters}
        if inserted and metered_types:
            type_of = {e.id: e.type for e in events}
            pending = [i for i in inserted if type_of[i] in metered_types]
            if pending:
                conn.execute(
                    text("INSERT INTO rollup_pending (event_id) SELECT value FROM json_each(:ids)"),
                    {"ids": orjson.dumps(pending).decode()},
                )
        counted_rows: list[Any] = []
        if inserted and counted is not None:
            d = dialect_for("sqlite")
            ids = d.bind(orjson.dumps(inserted).decode())
            source = f"(SELECT * FROM events WHERE id IN (SELECT value FROM json_each({ids})))"
            limited = counted.rows_sql(d, source)
            if limited is not None:
                counted_rows = list(conn.execute(text(limited), d.params).all())
        return len(inserted), counted_rows
