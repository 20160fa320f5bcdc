"""Identifiers in byte order on PostgreSQL (``db.identifier``: ``COLLATE "C"``), whatever the
database's own collation: the columns the models declare so, migration 0023 that makes them so,
and what it changes in a database whose default collation is a language's."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.dialects import postgresql

from tests.conftest import scratch_pg_database
from tollway.db import BYTE_ORDER, Base, make_engine, make_sessionmaker
from tollway.event.ingest import IncomingEvent
from tollway.event.service import EventFilter, list_events
from tollway.event.store import SqlEventStore
from tollway.migrations.runner import alembic_config, upgrade

# Apart in byte order, together in a language's: upper case before lower, accents after "z".
IDS = ["b", "B", "a", "A", "é", "z", "Z", "a-1", "a1"]


def _declared_byte_ordered() -> set[tuple[str, str]]:
    """(table, column) of every model column whose PostgreSQL type is in byte order."""
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    return {
        (table.name, column.name)
        for table in Base.metadata.tables.values()
        for column in table.columns
        if f'COLLATE "{BYTE_ORDER}"' in column.type.compile(dialect=dialect)
    }


_COLLATIONS = text(
    "SELECT c.relname, a.attname, co.collname FROM pg_attribute a "
    "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
    "JOIN pg_collation co ON co.oid = a.attcollation "
    "WHERE n.nspname = 'public' AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped"
)


def test_the_migrated_columns_are_in_byte_order_where_the_models_say(backend, db_url) -> None:  # type: ignore[no-untyped-def]
    if backend == "sqlite":
        pytest.skip("PostgreSQL only: SQLite compares text by its bytes (BINARY) already")
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(_COLLATIONS).all()
    finally:
        engine.dispose()
    migrated = {(table, column) for table, column, collation in rows if collation == BYTE_ORDER}
    assert migrated == _declared_byte_ordered()
    assert {("events", "id"), ("events", "customer"), ("events", "type"), ("meter_rollups", "group_key")} <= migrated
    assert {collation for _, _, collation in rows} <= {BYTE_ORDER, "default"}


@pytest.fixture
def language_db_url(backend: str) -> Iterator[str]:
    """An empty PostgreSQL database whose default collation is English (ICU), as a database
    created with a language's locale has."""
    if backend == "sqlite":
        pytest.skip("PostgreSQL only: SQLite compares text by its bytes (BINARY) already")
    with scratch_pg_database(
        "tw_lang", "TEMPLATE template0 LOCALE 'C.UTF-8' LOCALE_PROVIDER icu ICU_LOCALE 'en-US'"
    ) as url:
        yield url


def _stored_order(engine) -> list[str]:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return list(conn.scalars(text("SELECT id FROM events ORDER BY id")))


def test_a_language_collation_database_keeps_identifiers_in_byte_order(language_db_url) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(language_db_url)
    cfg = alembic_config()
    try:
        upgrade(engine)
        with engine.connect() as conn:
            assert conn.scalar(text("SELECT 'a' < 'B'")) is True  # the database's own order is English
        at = datetime(2026, 11, 26, 12, tzinfo=UTC)
        stored = SqlEventStore(engine).store([IncomingEvent(i, i, "api_call", at, {}) for i in IDS], at)
        assert stored == len(IDS)
        assert _stored_order(engine) == sorted(IDS)  # Python's str order: code points, i.e. UTF-8 bytes
        with make_sessionmaker(engine)() as session:  # the events list: newest first, ties by id descending
            listed = [item.event.id for item in list_events(session, EventFilter(), limit=100, after=None)]
            by_customer = [
                item.event.id for item in list_events(session, EventFilter(customer="a"), limit=100, after=None)
            ]
        assert listed == sorted(IDS, reverse=True)
        assert by_customer == ["a"]

        with engine.begin() as conn:  # before 0023: the database's order, the rows kept
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0022")
        english = _stored_order(engine)
        assert sorted(english) == sorted(IDS)
        assert english != sorted(IDS)
        assert english.index("a") < english.index("B")
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
        assert _stored_order(engine) == sorted(IDS)
    finally:
        engine.dispose()
