"""The SQL event store: the source of truth for usage. Append-only, unique on event id.

Storing a batch also notes, in the same transaction, which of its events some meter counts
(``rollup_pending``); the worker later adds them to the meters' hourly rollups in bulk
(``meter.rollup``), and the limits' counters with them (``limit.keeper``). Queries and limit
checks count pending events raw, so nothing waits for the worker.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import orjson
from sqlalchemy import text
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine

from tollway.db import database_now
from tollway.event.ingest import IncomingEvent
from tollway.meter import rollup
from tollway.meter.definition import MeterDefinition
from tollway.meter.sql import dialect_for
from tollway.models import Event


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

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.postgres = engine.dialect.name == "postgresql"

    def store(self, events: Sequence[IncomingEvent], ingested_at: datetime) -> int:
        if not events:
            return 0
        with self.engine.begin() as conn:
            rollup.lock_shared(conn)
            if self.postgres:  # the database's clock, not this host's (db.database_now)
                ingested_at = database_now(conn)
            meters = rollup.load_meters(conn, {e.type for e in events})
            if self.postgres:
                return self._store_postgres(conn, events, ingested_at, meters)
            return self._store_sqlite(conn, events, ingested_at, meters)

    def _store_postgres(
        self, conn: Connection, events: Sequence[IncomingEvent], ingested_at: datetime, meters: list[MeterDefinition]
    ) -> int:
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
            "ON CONFLICT (id) DO NOTHING RETURNING id, customer, type)"
        ]
        if meters:
            types = d.bind(sorted({m.event_type for m in meters}))
            ctes.append(
                "pend AS (INSERT INTO rollup_pending (event_id, customer) "
                f"SELECT id, customer FROM ins WHERE type = ANY(CAST({types} AS text[])))"
            )
        sql = f"WITH {', '.join(ctes)} SELECT count(*) FROM ins"
        return int(conn.execute(text(sql), d.params).scalar_one())

    def _store_sqlite(
        self, conn: Connection, events: Sequence[IncomingEvent], ingested_at: datetime, meters: list[MeterDefinition]
    ) -> int:
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
            by_id = {e.id: e for e in events}
            pending = [[i, by_id[i].customer] for i in inserted if by_id[i].type in metered_types]
            if pending:
                conn.execute(
                    text(
                        "INSERT INTO rollup_pending (event_id, customer) "
                        "SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(:rows)"
                    ),
                    {"rows": orjson.dumps(pending).decode()},
                )
        return len(inserted)
