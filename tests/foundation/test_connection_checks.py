"""Pooled PostgreSQL connections are checked before use without a round trip each time
(``db._check_connections_on_checkout``): a connection the server dropped is replaced, not handed
to a request."""

from __future__ import annotations

import time
from typing import Any

import psycopg
import pytest
from sqlalchemy import text

from tollway import db
from tollway.db import make_engine


def _pids(url: str) -> set[int]:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    return {row[0] for row in rows}


def _terminate_all_others(url: str) -> None:
    """End every other session on the database, as a restart or an administrator would, and wait
    until they are gone."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    deadline = time.monotonic() + 10
    while _pids(url) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not _pids(url)


def test_requests_go_on_when_the_server_drops_the_pooled_connections(  # type: ignore[no-untyped-def]
    backend: str, settings, api, anon, ingest_key: str
) -> None:
    if backend != "postgresql":
        pytest.skip("SQLite opens a connection per use")
    ingest = {"Authorization": f"Bearer {ingest_key}"}
    for i in range(3):  # the pool now holds connections used a moment ago: no ping is due
        assert (
            anon.post("/v1/events", json={"id": f"a{i}", "customer": "c", "type": "t"}, headers=ingest).status_code
            == 202
        )
        assert api.get("/v1/customers").status_code == 200
    _terminate_all_others(settings.database_url)
    for i in range(3):  # the key look-up, the batch insert and an ORM session each get a live one
        r = anon.post("/v1/events", json={"id": f"b{i}", "customer": "c", "type": "t"}, headers=ingest)
        assert r.status_code == 202 and r.json()["accepted"] == 1, r.text
        assert api.get("/v1/customers").status_code == 200


def _counting_pings(engine: Any) -> list[int]:
    pings: list[int] = []
    ping = engine.dialect.do_ping

    def counted(dbapi_conn: Any) -> bool:
        pings.append(1)
        return bool(ping(dbapi_conn))

    engine.dialect.do_ping = counted
    return pings


def test_a_connection_is_pinged_only_when_it_may_have_been_dropped(  # type: ignore[no-untyped-def]
    backend: str, settings, monkeypatch
) -> None:
    if backend != "postgresql":
        pytest.skip("SQLite opens a connection per use")
    engine = make_engine(settings.database_url, pool_size=1, max_overflow=0)
    try:
        pings = _counting_pings(engine)
        with engine.connect() as conn:  # a new connection: nothing to check
            conn.execute(text("LISTEN tollway_probe"))
            conn.commit()
        for _ in range(3):  # back in the pool a moment ago, nothing to read: handed out as it is
            with engine.connect() as conn:
                assert conn.execute(text("SELECT 1")).scalar_one() == 1
        assert pings == []

        with psycopg.connect(settings.database_url, autocommit=True) as other:
            other.execute("NOTIFY tollway_probe")  # something arrives on the idle connection's socket
        time.sleep(0.2)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT 1")).scalar_one() == 1
        assert len(pings) == 1

        monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0.0)  # idle for longer than the limit
        with engine.connect() as conn:
            assert conn.execute(text("SELECT 1")).scalar_one() == 1
        assert len(pings) == 2
    finally:
        engine.dispose()


def test_a_dropped_idle_connection_is_replaced_at_checkout(backend: str, settings) -> None:  # type: ignore[no-untyped-def]
    if backend != "postgresql":
        pytest.skip("SQLite opens a connection per use")
    engine = make_engine(settings.database_url, pool_size=1, max_overflow=0)
    try:
        pings = _counting_pings(engine)
        with engine.connect() as conn:
            first = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with psycopg.connect(settings.database_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (first,))
        deadline = time.monotonic() + 10
        while first in _pids(settings.database_url) and time.monotonic() < deadline:
            time.sleep(0.02)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT pg_backend_pid()")).scalar_one() != first
        assert len(pings) == 1  # the check saw the closed socket, the ping failed, a new one came
    finally:
        engine.dispose()
