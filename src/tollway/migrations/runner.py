"""Apply migrations programmatically (``tollway migrate``, ``tollway serve``, the tests)."""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Engine

log = logging.getLogger("tollway.migrations")

HERE = Path(__file__).parent


def alembic_config(url: str | None = None) -> Config:
    cfg = Config(str(HERE / "alembic.ini"))
    cfg.set_main_option("script_location", str(HERE))
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


# Any constant: the key of the PostgreSQL advisory lock that serializes migrations.
_PG_LOCK_KEY = 0x746F6C6C776179  # "tollway"


@contextmanager
def _file_lock(engine: Engine) -> Iterator[None]:
    """On SQLite, an exclusive lock on a file beside the database (every process that can open
    the database runs on this host); nothing for an in-memory database."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    fd = os.open(f"{database}.migrate-lock", os.O_RDWR | os.O_CREAT, 0o600)  # private, like the database
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str | None]:
    """Apply migrations; logs one line when some were applied, nothing when none were. Returns
    the revision before and after (``None``: an empty database).

    Several processes may start at once (``serve`` replicas, a ``worker``): each takes a lock
    first (a PostgreSQL transaction-level advisory lock, a file lock beside a SQLite file), so one
    migrates and the others then find the database at the head and change nothing."""
    cfg = alembic_config()
    with _file_lock(engine), engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
        before = MigrationContext.configure(conn).get_current_revision()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
        after = MigrationContext.configure(conn).get_current_revision()
    if after != before:
        log.info("database migrated from revision %s to %s", before or "(empty)", after)
    return before, after
