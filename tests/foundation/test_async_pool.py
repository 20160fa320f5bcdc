"""The asyncio pool (``db.AsyncDriverPool``): on PostgreSQL the API-key look-up and ingestion's
batch insert await the database on the event loop; the pool exists only while the application's
lifespan runs on that loop, checks its connections at checkout as the engine's pool does, and
everything without it (SQLite, no lifespan) takes the engine's pool in a thread."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient

from tollway import db
from tollway.db import async_pool, close_async_pool, make_engine, open_async_pool
from tollway.event import store as store_module


def _run_with_pool(url: str, body: Callable[[db.AsyncDriverPool], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        engine = make_engine(url, pool_size=1, max_overflow=0)
        try:
            await open_async_pool(engine)
            pool = async_pool(engine)
            assert pool is not None
            return await body(pool)
        finally:
            await close_async_pool(engine)
            assert async_pool(engine) is None
            engine.dispose()

    return asyncio.run(main())


def test_the_api_awaits_postgresql_on_the_loop_and_uses_threads_otherwise(  # type: ignore[no-untyped-def]
    backend: str, app, ingest_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    for name in ("_insert", "_insert_async"):
        original = getattr(store_module, name)

        def spy(*args: Any, _name: str = name, _original: Any = original) -> Any:
            calls.append(_name)
            return _original(*args)

        monkeypatch.setattr(store_module, name, spy)
    headers = {"Authorization": f"Bearer {ingest_key}"}
    event = {"customer": "c", "type": "api_call", "properties": {"n": 1}}
    with TestClient(app) as client:  # the lifespan runs: the pool is open on the client's loop
        r = client.post("/v1/events", json={"events": [{**event, "id": "a"}, {**event, "id": "b"}]}, headers=headers)
        assert r.status_code == 202 and r.json()["accepted"] == 2, r.text
        assert client.post("/v1/events", json={**event, "id": "a"}, headers=headers).json()["duplicates"] == 1
    assert calls == (["_insert_async"] * 3 if backend == "postgresql" else [])  # the duplicate: plain, then skipping
    calls.clear()
    client = TestClient(app)  # no lifespan: no pool on the loop of each request
    r = client.post("/v1/events", json={**event, "id": "c"}, headers=headers)
    assert r.status_code == 202 and r.json()["accepted"] == 1, r.text
    assert calls == (["_insert"] if backend == "postgresql" else [])


def test_a_connection_the_server_dropped_is_replaced_at_checkout(backend: str, settings) -> None:  # type: ignore[no-untyped-def]
    if backend != "postgresql":
        pytest.skip("the asyncio pool is PostgreSQL's")

    async def body(pool: db.AsyncDriverPool) -> None:
        async with pool.connection() as conn:
            first = (await (await conn.execute("SELECT pg_backend_pid()")).fetchone())[0]  # type: ignore[index]
        with psycopg.connect(settings.database_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (first,))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with psycopg.connect(settings.database_url, autocommit=True) as admin:
                if admin.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (first,)).fetchone() == (0,):
                    break
            await asyncio.sleep(0.02)
        async with pool.connection() as conn:
            assert (await (await conn.execute("SELECT pg_backend_pid()")).fetchone())[0] != first  # type: ignore[index]

    _run_with_pool(settings.database_url, body)


def test_a_connection_is_pinged_only_when_it_may_have_been_dropped(  # type: ignore[no-untyped-def]
    backend: str, settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    if backend != "postgresql":
        pytest.skip("the asyncio pool is PostgreSQL's")
    pings: list[int] = []
    execute = psycopg.AsyncConnection.execute

    async def counted(conn: psycopg.AsyncConnection[Any], query: Any, *args: Any, **kwargs: Any) -> Any:
        if query == "SELECT 1":
            pings.append(1)
        return await execute(conn, query, *args, **kwargs)

    monkeypatch.setattr(psycopg.AsyncConnection, "execute", counted)

    async def body(pool: db.AsyncDriverPool) -> None:
        async with pool.connection() as conn:  # a new connection: nothing to check
            await conn.execute("LISTEN tollway_probe")
        for _ in range(3):  # back a moment ago, nothing to read: handed out as it is
            async with pool.connection() as conn:
                await conn.execute("SELECT 2")
        assert pings == []
        with psycopg.connect(settings.database_url, autocommit=True) as other:
            other.execute("NOTIFY tollway_probe")  # something arrives on the idle connection's socket
        await asyncio.sleep(0.2)
        async with pool.connection() as conn:
            await conn.execute("SELECT 2")
        assert len(pings) == 1
        monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0.0)  # idle for longer than the limit
        async with pool.connection() as conn:
            await conn.execute("SELECT 2")
        assert len(pings) == 2

    _run_with_pool(settings.database_url, body)


def test_a_database_refusing_connections_fails_the_request_at_once(backend: str) -> None:
    """No waiting for a pool timeout: the connection is made by the request that needs it."""
    if backend != "postgresql":
        pytest.skip("the asyncio pool is PostgreSQL's")
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        url = f"postgresql://postgres@127.0.0.1:{s.getsockname()[1]}/test"

    async def body(pool: db.AsyncDriverPool) -> None:
        started = time.monotonic()
        with pytest.raises(psycopg.OperationalError):
            async with pool.connection():
                pass
        assert time.monotonic() - started < 5

    _run_with_pool(url, body)


def test_connections_are_bounded_and_one_left_in_a_transaction_is_not_reused(  # type: ignore[no-untyped-def]
    backend: str, settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    if backend != "postgresql":
        pytest.skip("the asyncio pool is PostgreSQL's")
    monkeypatch.setattr(db, "ASYNC_POOL_TIMEOUT_SECONDS", 0.2)

    async def pid(conn: psycopg.AsyncConnection[Any]) -> int:
        row = await (await conn.execute("SELECT pg_backend_pid()")).fetchone()
        assert row is not None
        return int(row[0])

    async def body(pool: db.AsyncDriverPool) -> None:
        async with pool.connection() as conn:  # the pool's one connection (pool_size=1) is in use
            first = await pid(conn)
            with pytest.raises(TimeoutError):
                async with pool.connection():
                    pass
        async with pool.connection() as conn:
            assert await pid(conn) == first  # handed back idle: reused
            await conn.execute("BEGIN")  # handed back inside a transaction: closed
        async with pool.connection() as conn:
            assert await pid(conn) != first

    _run_with_pool(settings.database_url, body)


def test_a_real_server_ingests_and_goes_on_after_its_connections_are_dropped(  # type: ignore[no-untyped-def]
    backend: str, live_server
) -> None:
    """Through ``tollway serve``: batches answered 202 only once stored (counted in the database
    right after each answer), the key look-up refusing a wrong key; then PostgreSQL ends every
    session of the server (a restart would), and the next requests get new connections."""
    key = live_server.key("ingest")
    headers = {"Authorization": f"Bearer {key}"}

    def stored() -> int:
        engine = make_engine(live_server.db_url)
        try:
            with engine.connect() as conn:
                return int(conn.exec_driver_sql("SELECT count(*) FROM events").scalar_one())
        finally:
            engine.dispose()

    def send(prefix: str) -> None:
        for i in range(3):
            batch = {"events": [{"id": f"{prefix}-{i}-{j}", "customer": "c", "type": "api_call"} for j in range(50)]}
            r = httpx.post(f"{live_server.url}/v1/events", json=batch, headers=headers, timeout=30)
            assert r.status_code == 202 and r.json()["accepted"] == 50, r.text
        again = httpx.post(f"{live_server.url}/v1/events", json=batch, headers=headers, timeout=30)
        assert again.status_code == 202 and again.json()["duplicates"] == 50, again.text

    send("a")
    assert stored() == 150
    wrong = httpx.post(f"{live_server.url}/v1/events", json={"events": []}, headers={"Authorization": "Bearer tw_x"})
    assert wrong.status_code == 401
    if backend == "postgresql":
        with psycopg.connect(live_server.db_url, autocommit=True) as admin:
            ended = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchone()
        assert ended is not None and ended[0] >= 1
        time.sleep(0.2)
    send("b")
    assert stored() == 300
