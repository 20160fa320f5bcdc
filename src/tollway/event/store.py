"""The SQL event store: the source of truth for usage. Append-only, unique on event id."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine

from tollway.event.ingest import IncomingEvent
from tollway.models import Event


def _naive_utc(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None)


class SqlEventStore:
    """Stores events in the ``events`` table in one transaction per batch.

    PostgreSQL: COPY into a temporary staging table, then ``INSERT … ON CONFLICT (id) DO NOTHING``
    — one round trip for the rows, and the unique index decides duplicates even under concurrent
    retries of the same batch. SQLite: ``INSERT … ON CONFLICT DO NOTHING`` with executemany (rowcount sums the
    rows inserted).
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
        ingested = _naive_utc(ingested_at)
        raw = self.engine.raw_connection()
        try:
            conn = raw.driver_connection
            assert conn is not None
            with conn.cursor() as cur:
                cur.execute(
                    "CREATE TEMP TABLE IF NOT EXISTS events_stage "
                    "(id text, customer text, type text, timestamp timestamp, ingested_at timestamp, "
                    "properties jsonb) ON COMMIT DELETE ROWS"
                )
                with cur.copy(
                    "COPY events_stage (id, customer, type, timestamp, ingested_at, properties) FROM STDIN"
                ) as copy:
                    for e in events:
                        copy.write_row((e.id, e.customer, e.type, _naive_utc(e.timestamp), ingested, e.properties_json))
                cur.execute(
                    "INSERT INTO events (id, customer, type, timestamp, ingested_at, properties) "
                    "SELECT id, customer, type, timestamp, ingested_at, properties FROM events_stage "
                    "ON CONFLICT (id) DO NOTHING"
                )
                inserted = cur.rowcount
            conn.commit()
            return int(inserted)
        except BaseException:
            raw.rollback()
            raise
        finally:
            raw.close()
