"""Engine, sessions, the UTC datetime column type and the declarative base."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import select
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

import orjson
import psycopg
from sqlalchemy import JSON, DateTime, MetaData, Numeric, String, Text, create_engine, event, exc, make_url, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import NullPool, QueuePool
from sqlalchemy.types import TypeDecorator, TypeEngine

from tollway.kit.money import EXACT

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


M = TypeVar("M", bound=Base)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime.

    Refuses naive datetimes on the way in (SQLite would silently drop the zone) and always returns
    aware UTC datetimes on the way out. Stored as naive UTC so that SQLite's text representation
    sorts chronologically and PostgreSQL uses a plain ``timestamp`` with the same meaning.
    """

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected datetime, got {type(value).__name__}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("naive datetime refused: Tollway stores timezone-aware UTC only")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        parsed: datetime = datetime.fromisoformat(value) if isinstance(value, str) else value  # raw SQLite text
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


class ExactDecimal(TypeDecorator[Decimal]):
    """An exact decimal of any size and scale: ``numeric`` (no precision or scale) on PostgreSQL,
    decimal text on SQLite, where a NUMERIC column keeps a float (an integer past 2**63 rounded,
    17 digits at most). For quantities and meter values, which must come back as they went in:
    a quantity read back rounded differs from the one recomputed, and a correction follows.
    Money amounts are integers of minor units (``BigInteger``) and need no such type."""

    impl = Numeric
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        return dialect.type_descriptor(Text() if dialect.name == "sqlite" else Numeric())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None or dialect.name != "sqlite":
            return value
        return str(value if isinstance(value, Decimal) else Decimal(str(value)))

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None or isinstance(value, Decimal):
            return value
        return Decimal(value) if isinstance(value, int) else Decimal(str(value))


# JSON documents: JSONB on PostgreSQL, JSON text on SQLite.
JSONDoc = JSON().with_variant(JSONB(), "postgresql")

BYTE_ORDER = "C"
"""PostgreSQL's collation of identifier columns (``identifier``): compared and sorted by their
bytes, as SQLite's BINARY does. For UTF-8 text, byte order is code point order."""


def identifier(length: int | None = 200) -> TypeEngine[str]:
    """The column type of an identifier the usage path compares, sorts and indexes on every event
    (event ids, customers, event types, meter keys, group keys): text of at most ``length``
    characters (None: unbounded), in byte order on every backend.

    A database's default collation is often a language's (``en_US.UTF-8``), and its
    comparisons cost the B-tree insertions of every stored event several times a byte
    comparison's (BENCHMARKS.md); an identifier has no linguistic order to keep, and byte order
    gives the same order as SQLite and as Python's ``str``. Equality is the same in both."""
    plain: TypeEngine[str] = String(length) if length is not None else Text()
    ordered = String(length, collation=BYTE_ORDER) if length is not None else Text(collation=BYTE_ORDER)
    return plain.with_variant(ordered, "postgresql")


def normalize_url(url: str) -> str:
    """Accept ``postgresql://`` and ``postgres://`` and use the psycopg 3 driver for them."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


class _DecimalSum:
    """SQLite aggregate: exact decimal sum of numeric values (SQLite's SUM works on floats)."""

    def __init__(self) -> None:
        self.total = Decimal(0)
        self.seen = False

    def step(self, value: Any) -> None:
        d = _decimal_or_none(value)
        if d is None:
            return
        self.total = EXACT.add(self.total, d)  # never rounded: a sum of hourly sums equals the sum of all
        self.seen = True

    def finalize(self) -> str | None:
        return str(self.total) if self.seen else None


class _DecimalExtreme:
    """SQLite aggregate: the least (``sign`` -1) or greatest (+1) of numeric values, compared as
    decimals and returned as decimal text (SQLite's MIN and MAX would compare the exact decimal
    text of a number as text, or its float)."""

    sign = 1

    def __init__(self) -> None:
        self.best: Decimal | None = None

    def step(self, value: Any) -> None:
        d = _decimal_or_none(value)
        if d is not None and (self.best is None or (d > self.best if self.sign > 0 else d < self.best)):
            self.best = d

    def finalize(self) -> str | None:
        return None if self.best is None else str(self.best)


class _DecimalMin(_DecimalExtreme):
    sign = -1


class _DecimalMax(_DecimalExtreme):
    sign = 1


def _decimal_or_none(value: Any) -> Decimal | None:
    """A SQLite value as a decimal: integers and decimal text exactly, a float by its shortest
    repr (the digits it was parsed from); None for NULL, blobs and non-numbers."""
    if value is None or isinstance(value, bytes):
        return None
    try:
        return Decimal(value) if isinstance(value, int) else Decimal(str(value))
    except InvalidOperation:
        return None


def _decimal_least(a: Any, b: Any) -> str | None:
    """SQLite scalar: the lesser of two decimals, NULL ignored (PostgreSQL's LEAST)."""
    values = [d for d in (_decimal_or_none(a), _decimal_or_none(b)) if d is not None]
    return str(min(values)) if values else None


def _decimal_greatest(a: Any, b: Any) -> str | None:
    """SQLite scalar: the greater of two decimals, NULL ignored (PostgreSQL's GREATEST)."""
    values = [d for d in (_decimal_or_none(a), _decimal_or_none(b)) if d is not None]
    return str(max(values)) if values else None


def _decimal_add(a: Any, b: Any) -> str | None:
    """SQLite scalar: exact decimal a + b (NULL + x = x)."""
    if a is None:
        return None if b is None else str(b)
    if b is None:
        return str(a)
    return str(EXACT.add(Decimal(str(a)), Decimal(str(b))))


def _decimal_text(value: Any) -> str | None:
    """SQLite scalar: a number as exact decimal text (a float by its shortest repr, which SQLite's
    own CAST to TEXT cuts to 15 digits); NULL and non-numbers stay NULL."""
    d = _decimal_or_none(value)
    return None if d is None else str(d)


_PATH_KEY = re.compile(r'\."([^"]*)"')


def _json_integer(doc: Any, path: Any) -> str | None:
    """SQLite scalar: the integer at ``path`` (``$."a"."b"``, as ``meter.sql`` writes it) in the
    JSON ``doc``, as its digits (json_extract gives a float for one past 2**63); NULL otherwise."""
    if not isinstance(doc, str | bytes) or not isinstance(path, str):
        return None
    try:
        value: Any = orjson.loads(doc)
    except orjson.JSONDecodeError:
        return None
    for key in _PATH_KEY.findall(path):
        value = value.get(key) if isinstance(value, dict) else None
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else None


def _sha256(value: Any) -> bytes | None:
    """SQLite scalar: the SHA-256 digest of a text value (PostgreSQL's sha256 of its UTF-8 bytes)."""
    return None if value is None else hashlib.sha256(str(value).encode()).digest()


def _sqlite_on_connect(dbapi_conn: sqlite3.Connection, _: Any) -> None:
    dbapi_conn.create_aggregate("tw_decimal_sum", 1, _DecimalSum)  # type: ignore[arg-type]
    dbapi_conn.create_aggregate("tw_decimal_min", 1, _DecimalMin)  # type: ignore[arg-type]
    dbapi_conn.create_aggregate("tw_decimal_max", 1, _DecimalMax)  # type: ignore[arg-type]
    dbapi_conn.create_function("tw_decimal_add", 2, _decimal_add, deterministic=True)
    dbapi_conn.create_function("tw_decimal_least", 2, _decimal_least, deterministic=True)
    dbapi_conn.create_function("tw_decimal_greatest", 2, _decimal_greatest, deterministic=True)
    dbapi_conn.create_function("tw_decimal_text", 1, _decimal_text, deterministic=True)
    dbapi_conn.create_function("tw_json_integer", 2, _json_integer, deterministic=True)
    dbapi_conn.create_function("tw_sha256", 1, _sha256, deterministic=True)
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def make_engine(url: str, **kwargs: Any) -> Engine:
    url = normalize_url(url)
    # Errors and logs show SQL without its parameters: they hold event payloads and key hashes.
    kwargs.setdefault("hide_parameters", True)
    if url.startswith("sqlite"):
        _create_private_file(url)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            poolclass=NullPool if ":memory:" not in url else None,
            **kwargs,
        )
        event.listen(engine, "connect", _sqlite_on_connect)

        # Serialize writers explicitly: BEGIN IMMEDIATE avoids SQLite's deadlock-prone lock upgrade.
        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            # An AUTOCOMMIT connection (a single read, such as the API-key look-up) takes no lock.
            if conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
                return
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        @event.listens_for(engine, "connect")
        def _no_autobegin(dbapi_conn: Any, _: Any) -> None:
            dbapi_conn.isolation_level = None

        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    engine = create_engine(url, **kwargs)
    if not kwargs.get("pool_pre_ping"):  # unless a ping at every checkout is asked for
        _check_connections_on_checkout(engine)
    return engine


PING_AFTER_IDLE_SECONDS = 10.0
"""A pooled PostgreSQL connection that sat unused longer than this is pinged before use."""

_RETURNED = "tollway_returned_at"  # in the pool's connection record: when it was last connected or returned


def _check_connections_on_checkout(engine: Engine) -> None:
    """What ``pool_pre_ping`` guards against, without its round trip on a busy connection.

    A pooled connection is pinged (``SELECT 1``, as ``pool_pre_ping`` does) before it is handed
    out when the server may have dropped it: when its socket has something to read — a server
    that ends a session (restart, ``pg_terminate_backend``, ``idle_session_timeout``, a pooler
    closing it) sends an error and closes it, and an idle connection otherwise receives nothing —
    or when it sat in the pool longer than :data:`PING_AFTER_IDLE_SECONDS` (a firewall or NAT
    forgetting an idle connection tells neither side). A failed ping invalidates the pool and the
    checkout gets a new connection, as with ``pool_pre_ping``. A connection in steady use, back
    in the pool milliseconds before, is handed out after a local check of its socket only, which
    saves a round trip per checkout: two of the four an ingestion request made with
    ``pool_pre_ping`` (key look-up and batch insert, each after a ping).
    """
    dialect = engine.dialect

    @event.listens_for(engine, "connect")
    def _connected(dbapi_conn: Any, record: Any) -> None:
        record.info[_RETURNED] = time.monotonic()

    @event.listens_for(engine, "checkin")
    def _returned(dbapi_conn: Any, record: Any) -> None:
        if dbapi_conn is not None and record is not None:
            record.info[_RETURNED] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_conn: Any, record: Any, proxy: Any) -> None:
        returned = record.info.get(_RETURNED)
        if returned is not None and time.monotonic() - returned < PING_AFTER_IDLE_SECONDS and _quiet(dbapi_conn):
            return
        try:
            dialect.do_ping(dbapi_conn)
        except Exception as error:
            raise exc.InvalidatePoolError(f"the database connection failed a ping: {error}") from error


def _quiet(dbapi_conn: Any) -> bool:
    """An open psycopg connection with nothing waiting to be read on its socket (False where the
    platform has no ``poll``, Windows: every checkout is then pinged, as with ``pool_pre_ping``)."""
    if (
        not isinstance(dbapi_conn, psycopg.Connection | psycopg.AsyncConnection)
        or dbapi_conn.closed
        or not hasattr(select, "poll")
    ):
        return False
    poller = select.poll()
    poller.register(dbapi_conn.fileno(), select.POLLIN | select.POLLPRI)
    return not poller.poll(0)  # POLLHUP and POLLERR are always reported


@contextmanager
def pooled_driver_connection(engine: Engine) -> Iterator[Any]:
    """The database driver's own connection, taken from the engine's pool (its checkout checks
    that it is alive), for a hot path that skips SQLAlchemy's statement layer. A psycopg one is
    in autocommit for the block (a client-side switch, no round trip: one statement, or the
    caller's own ``BEGIN`` … ``COMMIT``) and goes back to the pool as the pool hands connections
    out; one that broke, or that the block left inside a transaction, is kept out of the pool.
    sqlite3 connections are in autocommit already (``make_engine``)."""
    pooled = engine.raw_connection()
    driver = pooled.driver_connection
    try:
        if isinstance(driver, psycopg.Connection):
            driver.autocommit = True
        yield driver
    finally:
        if isinstance(driver, psycopg.Connection):
            if not driver.broken and driver.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
                driver.autocommit = False
            else:
                pooled.invalidate()
        pooled.close()


ASYNC_POOL_TIMEOUT_SECONDS = 30.0
"""How long a request waits for a connection of the asyncio pool when all are in use (the
engine pool's ``pool_timeout``)."""


class AsyncDriverPool:
    """psycopg's asyncio connections to the engine's PostgreSQL database, for the two statements
    of every request that are awaited on the event loop instead of handed to a thread: the
    API-key look-up and ingestion's batch insert. A hand-off to the threadpool and back, and a
    thread blocked on the database while the event loop wants the interpreter, cost the server
    more CPU than the statement itself (BENCHMARKS.md).

    Opened by the application's lifespan on its event loop (:func:`open_async_pool`) and closed
    at its end; :func:`async_pool` returns it only on that loop, so code without one (SQLite, a
    test client without the lifespan) takes the engine's pool in a thread instead. At most the
    engine pool's ``pool_size`` connections, made when first needed (a database that refuses
    connections fails the request at once, as the engine's pool does) and kept for reuse, the
    last returned first; each in autocommit (one statement, or the caller's own ``BEGIN`` …
    ``COMMIT``). At checkout a connection is checked as the engine's are
    (:func:`_check_connections_on_checkout`): pinged only when its socket has something to read
    or it sat unused over :data:`PING_AFTER_IDLE_SECONDS`, and a failed ping closes every idle
    connection (a restarted server dropped them all). One handed back broken, closed or inside
    a transaction is closed, not kept. (psycopg_pool was tried first: with the database refusing
    connections it kept each request waiting its 30 s timeout, and it runs tasks of its own on
    the loop.)"""

    def __init__(self, engine: Engine) -> None:
        self._url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._slots = asyncio.Semaphore(engine.pool.size() if isinstance(engine.pool, QueuePool) else 5)
        self._idle: list[tuple[psycopg.AsyncConnection[Any], float]] = []  # (connection, handed back at)
        self._closed = False

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        if self._slots.locked():  # every connection is in use: wait for one, but not forever
            async with asyncio.timeout(ASYNC_POOL_TIMEOUT_SECONDS):
                await self._slots.acquire()
        else:
            await self._slots.acquire()
        try:
            conn = await self._checkout()
            try:
                yield conn
            finally:
                await self._checkin(conn)
        finally:
            self._slots.release()

    async def close(self) -> None:
        """Close the idle connections; those in use are closed when handed back."""
        self._closed = True
        await self._close_idle()

    async def _checkout(self) -> psycopg.AsyncConnection[Any]:
        if self._idle:
            conn, returned = self._idle.pop()
            if time.monotonic() - returned < PING_AFTER_IDLE_SECONDS and _quiet(conn):
                return conn
            try:
                await conn.execute("SELECT 1")
                return conn
            except psycopg.Error:
                await conn.close()
                await self._close_idle()
        return await psycopg.AsyncConnection.connect(self._url, autocommit=True)

    async def _checkin(self, conn: psycopg.AsyncConnection[Any]) -> None:
        if self._closed or conn.broken or conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            await conn.close()
        else:
            self._idle.append((conn, time.monotonic()))

    async def _close_idle(self) -> None:
        idle, self._idle = self._idle, []
        for conn, _ in idle:
            await conn.close()


_ASYNC_POOLS: dict[tuple[int, asyncio.AbstractEventLoop], AsyncDriverPool] = {}  # (id(engine), its loop) -> pool


async def open_async_pool(engine: Engine) -> None:
    """Open an :class:`AsyncDriverPool` for the engine on the running event loop (PostgreSQL
    only; one per loop: each test client runs its own)."""
    key = (id(engine), asyncio.get_running_loop())
    if engine.dialect.name != "postgresql" or key in _ASYNC_POOLS:
        return
    _ASYNC_POOLS[key] = AsyncDriverPool(engine)  # connects when first used


async def close_async_pool(engine: Engine) -> None:
    """Close the engine's pool of the running event loop, if it has one."""
    pool = _ASYNC_POOLS.pop((id(engine), asyncio.get_running_loop()), None)
    if pool is not None:
        await pool.close()


def async_pool(engine: Engine) -> AsyncDriverPool | None:
    """The engine's open :class:`AsyncDriverPool` of the running event loop, if any."""
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        return None
    return _ASYNC_POOLS.get((id(engine), running))


def _create_private_file(url: str) -> None:
    """Create a new SQLite database file readable by its owner only (0600): it holds customers,
    invoices and API-key hashes. SQLite gives its -wal and -shm files the same mode."""
    path = make_url(url).database
    if not path or path == ":memory:" or path.startswith("file:"):
        return
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        pass


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A unit of work: commit on success, roll back on error.

    For work outside a request (the worker, jobs, the CLI, the console's sign-in); requests get
    theirs through :func:`tollway.deps.get_session`, the FastAPI dependency built on this one."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def get_or_404(
    session: Session, model: type[M], key: Any, not_found: Callable[[Any], Exception], *, for_update: bool = False
) -> M:
    """The ``model`` row with primary key ``key`` (locked FOR UPDATE if asked), or the domain's
    404 error ``not_found(key)`` (``CustomerNotFound``...)."""
    row = session.get(model, key, with_for_update=True if for_update else None)
    if row is None:
        raise not_found(key)
    return row


def is_postgres(bind: Engine | Connection | Session) -> bool:
    """Is ``bind`` (an engine, a connection or a session) on PostgreSQL?"""
    return (bind.get_bind() if isinstance(bind, Session) else bind).dialect.name == "postgresql"


def database_now(bind: Connection | Session) -> datetime:
    """The time that orders ingestion against billing cutoffs: PostgreSQL's clock, shared by every
    host that ingests, voids or bills (so a host whose clock drifts cannot put an event before a
    cutoff it came after); this host's clock on SQLite, which only one host can use."""
    if is_postgres(bind):
        now: datetime = bind.execute(text("SELECT clock_timestamp()")).scalar_one()
        return now.astimezone(UTC)
    return datetime.now(UTC)
