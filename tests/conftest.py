"""Test fixtures: every database test runs on SQLite and on PostgreSQL.

Each test starts on an empty, migrated database (only the rows the migrations seed). SQLite: a
copy of a file migrated once per session. PostgreSQL: one database per session (per xdist worker),
migrated once and emptied before each test by a ``DELETE`` of every table that holds rows
(tables found by reflection after migrating, so every table a migration adds is covered),
sequences restarted and the seeded rows put back (a test that leaves the schema changed, such as a migration test going
down a revision, gets the database made anew). Tests commit for real, so live servers and
concurrent sessions see each other's work. PostgreSQL tests are skipped when no server answers,
except under ``CI=true`` where that is a failure.
"""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import MetaData, Table, insert, select, text
from sqlalchemy.engine import Engine

from tollway.app import configure, create_app
from tollway.auth.keys import create_key
from tollway.config import Settings
from tollway.db import make_engine, make_sessionmaker, session_scope
from tollway.migrations.runner import upgrade

PG_ADMIN_URL = os.environ.get("TOLLWAY_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
BACKENDS = ["sqlite", "postgresql"]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--backend",
        action="append",
        choices=BACKENDS,
        help="run database tests only on this backend (repeatable); default: both",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        chosen = metafunc.config.getoption("backend") or BACKENDS
        metafunc.parametrize("backend", chosen, scope="session")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """End-to-end tests (``e2e``: a server process, seconds each) first, the rest in their order:
    with xdist the long ones then start while there is still work to spread, instead of
    running alone on one worker at the end of the run."""
    items.sort(key=lambda item: item.get_closest_marker("e2e") is None)


def _pg_available() -> str | None:
    try:
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3, autocommit=True) as conn:
            conn.execute("SELECT 1")
        return None
    except Exception as exc:
        return str(exc)


def _pg_url(dbname: str) -> str:
    base, _, _ = PG_ADMIN_URL.rpartition("/")
    return f"{base}/{dbname}"


@contextmanager
def scratch_pg_database(prefix: str, options: str = "") -> Iterator[str]:
    """A new, empty PostgreSQL database (``CREATE DATABASE … {options}``) for one test: its URL,
    dropped afterwards."""
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" {options}'.rstrip())
    try:
        yield _pg_url(name)
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class PgDatabase:
    """The session's migrated PostgreSQL database and what emptying it takes."""

    name: str
    engine: Engine
    tables: list[Table] = field(default_factory=list)
    seed: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    schema: str = ""
    used: bool = False

    _SCHEMA = text(
        "SELECT (SELECT string_agg(version_num, ',') FROM alembic_version) || ':' || "
        "(SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'public')"
    )

    @classmethod
    def create(cls) -> PgDatabase:
        name = f"tw_t_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
            # Commits need not wait for the WAL flush: only a crash of the PostgreSQL server
            # could lose them, which no test makes; every session still sees each commit.
            conn.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
        engine = make_engine(_pg_url(name), pool_size=1, max_overflow=0)
        upgrade(engine)
        db = cls(name, engine)
        meta = MetaData()
        meta.reflect(engine)
        db.tables = [t for t in meta.sorted_tables if t.name != "alembic_version"]
        with engine.connect() as conn:
            db.schema = conn.execute(cls._SCHEMA).scalar_one()
            for table in db.tables:
                rows = [dict(r._mapping) for r in conn.execute(select(table))]
                if rows:  # seeded by a migration (the invoice number counter...)
                    db.seed[table.name] = rows
        return db

    def reset(self) -> bool:
        """Empty every table but keep the schema: DELETE from the tables that hold rows (and the
        seeded ones, whose rows go back in), and restart every sequence a test advanced.
        False, changing nothing, when a test changed the schema (a migration test that went down
        a revision): the database must then be made anew."""
        with self.engine.begin() as conn:
            # Connections a test left open (an engine it never disposed, a killed server's) would
            # hold locks the DELETE waits for: end them, as DROP DATABASE … WITH (FORCE) did.
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
            if conn.execute(self._SCHEMA).scalar_one() != self.schema:
                return False
            probes = " UNION ALL ".join(
                f"SELECT {i} FROM (SELECT 1 FROM {conn.dialect.identifier_preparer.format_table(t)} LIMIT 1) x{i}"
                for i, t in enumerate(self.tables)
            )
            filled = {int(r[0]) for r in conn.execute(text(probes))}
            dirty = [t for i, t in enumerate(self.tables) if i in filled or t.name in self.seed]
            # DELETE, not TRUNCATE: a test leaves a few rows in a few tables, and TRUNCATE makes
            # new files for every table and index it names (~0.15 s a test, ten times a DELETE).
            # Replica mode skips the foreign-key triggers, so the order of the tables is free.
            conn.execute(text("SET LOCAL session_replication_role = replica"))
            for table in dirty:
                conn.execute(table.delete())
            for seq in conn.execute(
                text("SELECT schemaname, sequencename FROM pg_sequences WHERE last_value IS NOT NULL")
            ).all():
                conn.execute(text(f'ALTER SEQUENCE "{seq[0]}"."{seq[1]}" RESTART'))
            for table in dirty:
                if table.name in self.seed:
                    conn.execute(insert(table), self.seed[table.name])
        return True

    def drop(self) -> None:
        self.engine.dispose()
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


@dataclass
class Databases:
    root: Path
    sqlite_file: Path | None = None
    pg: PgDatabase | None = None
    pg_problem: str | None = None


@pytest.fixture(scope="session")
def _databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Databases]:
    dbs = Databases(root=tmp_path_factory.mktemp("db-templates"))
    yield dbs
    if dbs.pg is not None:
        dbs.pg.drop()


@pytest.fixture
def db_url(backend: str, _databases: Databases, tmp_path: Path) -> Iterator[str]:
    """A migrated database holding no rows but the seeded ones, for this test only."""
    if backend == "sqlite":
        if _databases.sqlite_file is None:
            path = _databases.root / "template.db"
            engine = make_engine(f"sqlite:///{path}")
            upgrade(engine)
            engine.dispose()
            _databases.sqlite_file = path
        target = tmp_path / "tollway.db"
        shutil.copyfile(_databases.sqlite_file, target)
        # An idle connection held open for the test (no transaction, so no lock): the engine
        # opens and closes a connection per session (NullPool), and the close of the last
        # connection to a WAL database checkpoints it and fsyncs, once per request.
        keeper = sqlite3.connect(target)
        keeper.execute("SELECT count(*) FROM sqlite_master").fetchone()
        try:
            yield f"sqlite:///{target}"
        finally:
            keeper.close()
        return

    if _databases.pg is None:
        problem = _databases.pg_problem or _pg_available()
        if problem:
            _databases.pg_problem = problem
            if os.environ.get("CI") == "true":
                pytest.fail(f"PostgreSQL is required when CI=true and is not reachable: {problem}")
            pytest.skip(f"PostgreSQL not reachable: {problem}")
        _databases.pg = PgDatabase.create()
    elif _databases.pg.used and not _databases.pg.reset():
        _databases.pg.drop()
        _databases.pg = PgDatabase.create()
    _databases.pg.used = True
    yield _pg_url(_databases.pg.name)


@pytest.fixture
def settings(db_url: str) -> Settings:
    return Settings(database_url=db_url, run_worker_in_serve=False)


_shared_app: FastAPI | None = None


@pytest.fixture
def app(settings: Settings) -> Iterator[FastAPI]:
    """The application with this test's settings. One application per process, given each test's
    settings on a fresh ``app.state`` by ``tollway.app.configure`` (what create_app does with
    them) and a middleware stack built anew at its first request, since building the routes of a
    new application (FastAPI derives every included route again) costs more than most tests.
    What a test changes on it (routes added, dependency overrides, attributes replaced) is undone
    after the test."""
    global _shared_app
    if _shared_app is None:
        _shared_app = create_app(settings)
    else:
        configure(_shared_app, settings)
    application = _shared_app
    application.middleware_stack = None
    attributes = dict(vars(application))
    routes = list(application.router.routes)
    try:
        yield application
    finally:
        application.state.engine.dispose()
        application.dependency_overrides.clear()
        vars(application).clear()
        vars(application).update(attributes)
        if application.router.routes != routes:
            application.router.routes[:] = routes
            application.openapi_schema = None


@pytest.fixture
def session_factory(app):  # type: ignore[no-untyped-def]
    return app.state.sessionmaker


def make_key(app, scope: str) -> str:  # type: ignore[no-untyped-def]
    with session_scope(app.state.sessionmaker) as session:
        _, secret = create_key(session, scope=scope, name=f"test-{scope}")
    return secret


def key_for(db_url: str, scope: str) -> str:
    """A new API key of ``scope`` in the database at ``db_url`` (for a live server's tests)."""
    engine = make_engine(db_url)
    try:
        with session_scope(make_sessionmaker(engine)) as session:
            _, secret = create_key(session, scope=scope, name=f"test-{scope}")
    finally:
        engine.dispose()
    return secret


@pytest.fixture
def admin_key(app) -> str:  # type: ignore[no-untyped-def]
    return make_key(app, "admin")


@pytest.fixture
def ingest_key(app) -> str:  # type: ignore[no-untyped-def]
    return make_key(app, "ingest")


@pytest.fixture
def api(app, admin_key: str) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    """An HTTP client authenticated with an admin key."""
    with TestClient(app, headers={"Authorization": f"Bearer {admin_key}"}) as client:
        yield client


@pytest.fixture
def anon(app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(app) as client:
        yield client


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    db_url: str
    process: subprocess.Popen[bytes]
    env: dict[str, str]
    log_file: Path | None = None  # the server's stderr (a file: a pipe nobody reads fills up and blocks it)

    def log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file else ""

    def key(self, scope: str) -> str:
        """A new API key for this server's database, made in-process (``cli("keys", "create", …)``
        costs a Python start-up; the CLI's own tests call it)."""
        return key_for(self.db_url, scope)

    def cli(self, *args: str) -> str:
        out = subprocess.run(
            [sys.executable, "-m", "tollway", *args], env=self.env, check=True, capture_output=True, text=True
        )
        return out.stdout


def start_server(db_url: str, port: int | None = None, extra_env: dict[str, str] | None = None) -> LiveServer:
    port = port or free_port()
    env = {**os.environ, "TOLLWAY_DATABASE_URL": db_url, **(extra_env or {})}
    log_fd, log_name = tempfile.mkstemp(prefix="tollway-serve-", suffix=".log")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tollway", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log_fd,
    )
    os.close(log_fd)
    log_file = Path(log_name)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    # One client for the polls: each httpx.get() builds a TLS context (~30 ms of CPU), taken from
    # the server starting up.
    with httpx.Client(timeout=1) as probe:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                err = log_file.read_text(errors="replace")
                raise RuntimeError(f"tollway serve exited with {proc.returncode}: {err[-2000:]}")
            try:
                if probe.get(f"{url}/healthz").status_code == 200:
                    return LiveServer(url, db_url, proc, env, log_file)
            except httpx.HTTPError:
                time.sleep(0.2)
    proc.kill()
    raise RuntimeError("tollway serve did not become healthy within 60 s")


@pytest.fixture
def live_server(db_url: str) -> Iterator[LiveServer]:
    server = start_server(db_url)
    try:
        yield server
    finally:
        stop_server(server)


def stop_server(server: LiveServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.process.kill()
    if server.log_file:
        server.log_file.unlink(missing_ok=True)


# Debian's Chromium for the page tests (portal, console): one browser per test session.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def chromium():  # type: ignore[no-untyped-def]
    """Debian's Chromium driven by Playwright. Under CI a missing browser fails the run (never a
    skip): ``.ci/run`` installs it. Module-scoped: Playwright's sync API runs an event loop in
    this thread while it is open, which ``asyncio.run()`` in later tests must not find."""
    if not os.path.exists(CHROMIUM):
        message = f"{CHROMIUM} is missing: apt-get install -y chromium"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
