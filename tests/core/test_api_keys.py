"""API keys through the API and the CLI; a revoked key is refused at once, in every process."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg.pq import TransactionStatus
from sqlalchemy import text

from tests.conftest import LiveServer
from tollway.app import create_app
from tollway.auth.keys import Principal, create_key, lookup_key, lookup_key_async, revoke_key
from tollway.db import close_async_pool, make_engine, open_async_pool, session_scope
from tollway.kit.time import utcnow


def test_create_list_revoke(api, anon, admin_key: str) -> None:  # type: ignore[no-untyped-def]
    r = api.post("/v1/api-keys", json={"scope": "ingest", "name": "gateway"})
    assert r.status_code == 201, r.text
    created = r.json()
    secret = created["key"]
    assert secret.startswith("tw_ingest_") and created["prefix"] == secret[: len(created["prefix"])]
    assert created["scope"] == "ingest" and created["name"] == "gateway" and created["revoked_at"] is None

    listed = api.get("/v1/api-keys")
    assert listed.status_code == 200
    assert {k["id"] for k in listed.json()["data"]} >= {created["id"]}
    assert all("key" not in k for k in listed.json()["data"])
    assert secret not in listed.text and admin_key not in listed.text

    ingest = {"Authorization": f"Bearer {secret}"}
    assert anon.post("/v1/events", json={"id": "e1", "customer": "c", "type": "t"}, headers=ingest).status_code == 202
    assert anon.get("/v1/api-keys", headers=ingest).status_code == 403  # ingest keys cannot manage keys

    revoked = api.post(f"/v1/api-keys/{created['id']}/revoke")
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    assert "key" not in revoked.json()
    r = anon.post("/v1/events", json={"id": "e1", "customer": "c", "type": "t"}, headers=ingest)
    assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"
    again = api.post(f"/v1/api-keys/{created['id']}/revoke")  # idempotent
    assert again.status_code == 200 and again.json()["revoked_at"] == revoked.json()["revoked_at"]


def test_bad_input(api) -> None:  # type: ignore[no-untyped-def]
    r = api.post("/v1/api-keys", json={"scope": "root"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "scope"
    assert api.post("/v1/api-keys/key_nope/revoke").status_code == 404
    assert api.get("/v1/api-keys", params={"limit": 0}).status_code == 422


def test_list_pages(api) -> None:  # type: ignore[no-untyped-def]
    ids = {api.post("/v1/api-keys", json={"scope": "ingest"}).json()["id"] for _ in range(3)}
    first = api.get("/v1/api-keys", params={"limit": 2}).json()
    second = api.get("/v1/api-keys", params={"limit": 2, "after": first["next"]}).json()
    seen = {k["id"] for k in first["data"] + second["data"]}
    assert ids <= seen and len(seen) == 4  # three new keys and the fixture's admin key
    assert second["next"] is None


def test_revocation_is_seen_at_once_by_another_process(settings, api) -> None:  # type: ignore[no-untyped-def]
    """Two app instances on one database stand for two processes: no key cache to wait for."""
    other = create_app(settings)
    try:
        secret = api.post("/v1/api-keys", json={"scope": "admin"}).json()
        with TestClient(other, headers={"Authorization": f"Bearer {secret['key']}"}) as client:
            assert client.get("/v1/customers").status_code == 200
            api.post(f"/v1/api-keys/{secret['id']}/revoke")
            assert client.get("/v1/customers").status_code == 401
    finally:
        other.state.engine.dispose()


@pytest.mark.e2e
def test_cli_list_and_revoke_against_a_running_server(live_server: LiveServer) -> None:
    key = live_server.cli("keys", "create", "--scope", "admin", "--name", "ops").strip().splitlines()[-1]
    headers = {"Authorization": f"Bearer {key}"}
    assert httpx.get(f"{live_server.url}/v1/customers", headers=headers).status_code == 200
    listing = live_server.cli("keys", "list")
    assert key not in listing
    line = next(line for line in listing.splitlines() if "ops" in line)
    key_id = line.split()[0]
    assert key_id.startswith("key_") and "admin" in line and "active" in line
    assert "revoked" in live_server.cli("keys", "revoke", key_id)
    assert httpx.get(f"{live_server.url}/v1/customers", headers=headers).status_code == 401
    assert "revoked" in next(line for line in live_server.cli("keys", "list").splitlines() if key_id in line)
    missing = subprocess.run(
        [sys.executable, "-m", "tollway", "keys", "revoke", "key_nope"],
        env=live_server.env,
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 1 and "not found" in missing.stderr


def test_the_key_look_up_does_not_wait_for_writers(app, admin_key: str) -> None:  # type: ignore[no-untyped-def]
    """The gate's look-up is one autocommit read: on SQLite it takes no write lock, so a long
    write (an ingestion batch) does not hold every request's authentication up."""
    import time

    from sqlalchemy import text
    from starlette.requests import Request

    from tollway.auth.dependencies import authenticate

    writer = app.state.engine.connect()
    try:
        writer.execute(text("UPDATE api_keys SET name = 'busy'"))  # holds the write lock (SQLite)
        request = Request({"type": "http", "headers": [(b"authorization", f"Bearer {admin_key}".encode())], "app": app})
        started = time.monotonic()
        assert asyncio.run(authenticate(request)).scope == "admin"
        assert time.monotonic() - started < 5  # SQLite's busy timeout is 30 s
    finally:
        writer.rollback()
        writer.close()


def test_the_gate_look_up_finds_live_keys_only(settings, app) -> None:  # type: ignore[no-untyped-def]
    """``lookup_key`` (the gate's query, sent by the driver) finds a live and a customer-scoped
    key, not a revoked or an unknown one, and hands its connection back to the pool as
    it took it: not in autocommit, no transaction open."""
    with session_scope(app.state.sessionmaker) as session:
        live, live_secret = create_key(session, scope="admin")
        scoped, scoped_secret = create_key(session, scope="ingest", customer="cust-1")
        gone, gone_secret = create_key(session, scope="ingest")
        revoke_key(session, gone.id, now=utcnow())
    engine = make_engine(
        settings.database_url,
        **({} if settings.database_url.startswith("sqlite") else {"pool_size": 1, "max_overflow": 0}),
    )
    try:
        expected = {
            live_secret: Principal(live.id, "admin"),
            scoped_secret: Principal(scoped.id, "ingest", "cust-1"),
            gone_secret: None,
            "tw_admin_" + "x" * 43: None,
        }
        for secret, principal in expected.items():
            assert lookup_key(engine, secret) == principal

        async def on_the_loop() -> list[Principal | None]:  # the asyncio pool's look-up (PostgreSQL)
            await open_async_pool(engine)
            try:
                return [await lookup_key_async(engine, secret) for secret in expected]
            finally:
                await close_async_pool(engine)

        assert asyncio.run(on_the_loop()) == list(expected.values())
        with engine.connect() as conn:  # PostgreSQL: the one pooled connection lookup_key used
            driver = conn.connection.driver_connection
            if isinstance(driver, psycopg.Connection):
                assert driver.autocommit is False and driver.info.transaction_status == TransactionStatus.IDLE
            conn.execute(text("SELECT 1"))
            assert conn.in_transaction()
    finally:
        engine.dispose()
