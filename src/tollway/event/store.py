"""The SQL event store: the source of truth for usage. Append-only, unique on event id."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import orjson
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine

from tollway.event.ingest import IncomingEvent
from tollway.models import Event


def _naive_utc(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None)


class SqlEventStore:
    """Stores events in the ``events`` table in one transaction per batch.

    PostgreSQL: one ``INSERT … SELECT FROM json_to_recordset(batch) ON CONFLICT (id) DO NOTHING``
    — one round trip and one statement per batch, and the unique index decides duplicates even
    under concurrent retries of the same batch (measured against COPY in BENCHMARKS.md).
    SQLite: ``INSERT … ON CONFLICT DO NOTHING`` with executemany (rowcount sums the rows inserted).
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.postgres = engine.dialect.name == "postgresql"

    def store(self, events: Sequence[IncomingEvent], ingested_at: datetime) -> int:
        if not events:
            return 0
        if self.postgres:
            return self._store_postgres(events, ingested_at)
        return self._store_sqlite(events, ingested_at)

    def _store_sqlite(self, events: Sequence[IncomingEvent], ingested_at: datetime) -> int:
        stmt = sqlite_insert(Event).on_conflict_do_nothing(index_elements=["id"])
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
        with self.engine.begin() as conn:
            result = conn.execute(stmt, rows)
            return int(result.rowcount)

    def _store_postgres(self, events: Sequence[IncomingEvent], ingested_at: datetime) -> int:
        # The batch travels as one JSON document that PostgreSQL unpacks itself: orjson encodes it
        # in C, and no per-row work is left in Python.
        payload = orjson.dumps(
            [{"id": e.id, "c": e.customer, "t": e.type, "ts": e.timestamp, "p": e.properties} for e in events]
        ).decode()
        raw = self.engine.raw_connection()
        try:
            conn = raw.driver_connection
            assert conn is not None
            with conn.cursor() as cur:
                cur.execute(
                    "INSERT INTO events (id, customer, type, timestamp, ingested_at, properties) "
                    "SELECT b.id, b.c, b.t, b.ts AT TIME ZONE 'UTC', %s, b.p "
                    "FROM json_to_recordset(%s::json) AS b(id text, c text, t text, ts timestamptz, p jsonb) "
                    "ON CONFLICT (id) DO NOTHING",
                    (_naive_utc(ingested_at), payload),
                )
                inserted = cur.rowcount
            conn.commit()
            return int(inserted)
        except BaseException:
            raw.rollback()
            raise
        finally:
            raw.close()
