from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone

import pytest
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import select

from tests.conftest import scratch_pg_database
from tollway.auth.keys import hash_key
from tollway.db import make_engine, make_sessionmaker, session_scope
from tollway.migrations.runner import alembic_config
from tollway.models import ApiKey, Customer


def _cli(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TOLLWAY_DATABASE_URL": db_url}
    return subprocess.run([sys.executable, "-m", "tollway", *args], env=env, capture_output=True, text=True)


def test_keys_create_prints_key_alone_on_last_line(db_url):
    out = _cli(db_url, "keys", "create", "--scope", "ingest", "--name", "gateway")
    assert out.returncode == 0, out.stderr
    key = out.stdout.strip().splitlines()[-1]
    assert key.startswith("tw_ingest_") and " " not in key
    engine = make_engine(db_url)
    try:
        with make_sessionmaker(engine)() as s:
            row = s.scalars(select(ApiKey).where(ApiKey.key_hash == hash_key(key))).one()
            assert row.scope == "ingest" and row.name == "gateway"
    finally:
        engine.dispose()


def test_keys_create_rejects_unknown_scope(db_url):
    out = _cli(db_url, "keys", "create", "--scope", "root")
    assert out.returncode != 0
    assert "scope" in out.stderr


def test_migrate_is_repeatable(db_url):
    for _ in range(2):
        out = _cli(db_url, "migrate")
        assert out.returncode == 0, out.stderr


def test_utc_datetime_refuses_naive_and_returns_utc(db_url):
    engine = make_engine(db_url)
    factory = make_sessionmaker(engine)
    try:
        with pytest.raises(Exception, match="naive"), session_scope(factory) as s:
            s.add(Customer(id="n", created_at=datetime(2026, 1, 1), updated_at=datetime(2026, 1, 1)))
        rome = timezone(timedelta(hours=1))
        with session_scope(factory) as s:
            s.add(Customer(id="z", created_at=datetime(2026, 1, 1, 12, tzinfo=rome), updated_at=datetime.now(UTC)))
        with factory() as s:
            got = s.get(Customer, "z")
            assert got is not None
            assert got.created_at == datetime(2026, 1, 1, 11, tzinfo=UTC)
            assert got.created_at.tzinfo is not None and got.created_at.utcoffset() == timedelta(0)
    finally:
        engine.dispose()


@pytest.fixture
def empty_db_url(backend: str, tmp_path):  # type: ignore[no-untyped-def]
    """A database that exists and holds nothing (not migrated)."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    with scratch_pg_database("tw_empty") as url:
        yield url


def test_processes_starting_together_migrate_once(empty_db_url):
    """Several processes (serve replicas, a worker) starting at once on an empty database: one
    migrates, the others wait for it and find nothing to do; none fails."""
    env = {**os.environ, "TOLLWAY_DATABASE_URL": empty_db_url}
    procs = [
        subprocess.Popen([sys.executable, "-m", "tollway", "migrate"], env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    results = [(p.wait(timeout=120), p.stdout.read() if p.stdout else "") for p in procs]
    assert [code for code, _ in results] == [0, 0, 0, 0], results
    migrated = [out for _, out in results if "database migrated from revision (empty)" in out]
    assert len(migrated) == 1, results
    engine = make_engine(empty_db_url)
    try:
        with engine.connect() as conn:
            head = ScriptDirectory.from_config(alembic_config()).get_current_head()
            assert MigrationContext.configure(conn).get_current_revision() == head
    finally:
        engine.dispose()
