"""Test fixtures: every database test runs on SQLite and on PostgreSQL.

Each test gets its own database: a copy of a migrated SQLite file, or a PostgreSQL database
cloned from a migrated template (``CREATE DATABASE … TEMPLATE``). Migrations run once per
session and per backend. PostgreSQL tests are skipped when no server answers, except under
``CI=true`` where that is a failure.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient

from tollway.app import create_app
from tollway.auth.keys import create_key
from tollway.config import Settings
from tollway.db import make_engine, session_scope
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


def _pg_available() -> str | None:
    try:
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3, autocommit=True) as conn:
            conn.execute("SELECT 1")
        return None
    except Exception as exc:
        return str(exc)


@dataclass
class Templates:
    root: Path
    sqlite_file: Path | None = None
    pg_name: str | None = None


@pytest.fixture(scope="session")
def _templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Templates]:
    t = Templates(root=tmp_path_factory.mktemp("db-templates"))
    yield t
    if t.pg_name:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{t.pg_name}" WITH (FORCE)')


def _pg_url(dbname: str) -> str:
    base, _, _ = PG_ADMIN_URL.rpartition("/")
    return f"{base}/{dbname}"


@pytest.fixture
def db_url(backend: str, _templates: Templates, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated database for this test only."""
    if backend == "sqlite":
        if _templates.sqlite_file is None:
            path = _templates.root / "template.db"
            engine = make_engine(f"sqlite:///{path}")
            upgrade(engine)
            engine.dispose()
            _templates.sqlite_file = path
        target = tmp_path / "tollway.db"
        shutil.copyfile(_templates.sqlite_file, target)
        yield f"sqlite:///{target}"
        return

    problem = _pg_available()
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is required when CI=true and is not reachable: {problem}")
        pytest.skip(f"PostgreSQL not reachable: {problem}")
    if _templates.pg_name is None:
        name = f"tw_tpl_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        engine = make_engine(_pg_url(name))
        upgrade(engine)
        engine.dispose()
        _templates.pg_name = name
    dbname = f"tw_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{dbname}" TEMPLATE "{_templates.pg_name}"')
    try:
        yield _pg_url(dbname)
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')


@pytest.fixture
def settings(db_url: str) -> Settings:
    return Settings(database_url=db_url, run_worker_in_serve=False)


@pytest.fixture
def app(settings: Settings):  # type: ignore[no-untyped-def]
    application = create_app(settings)
    yield application
    application.state.engine.dispose()


@pytest.fixture
def session_factory(app):  # type: ignore[no-untyped-def]
    return app.state.sessionmaker


def make_key(app, scope: str) -> str:  # type: ignore[no-untyped-def]
    with session_scope(app.state.sessionmaker) as session:
        _, secret = create_key(session, scope=scope, name=f"test-{scope}")
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
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = log_file.read_text(errors="replace")
            raise RuntimeError(f"tollway serve exited with {proc.returncode}: {err[-2000:]}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return LiveServer(url, db_url, proc, env, log_file)
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("tollway serve did not become healthy within 60 s")


@pytest.fixture
def live_server(db_url: str) -> Iterator[LiveServer]:
    server = start_server(db_url)
    yield server
    server.process.terminate()
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.process.kill()
    if server.log_file:
        server.log_file.unlink(missing_ok=True)
