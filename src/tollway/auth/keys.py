"""API keys: random 256-bit secrets, stored only as SHA-256 hashes, with a scope.

The service of the ``/v1/api-keys`` routes and the ``tollway keys`` commands (takes the session
first, never commits). Keys are looked up on every request, not cached: one indexed read of a
unique hash on a pooled connection (:func:`lookup_key`, or :func:`lookup_key_async` on the event
loop; measured in BENCHMARKS.md), so a revoked key is refused at once by every process.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from tollway.db import async_pool, pooled_driver_connection
from tollway.errors import NotFound
from tollway.kit.pagination import decode_cursor
from tollway.models import ApiKey

SCOPES = ("admin", "ingest")


@dataclass(frozen=True)
class Principal:
    key_id: str
    scope: str
    customer: str | None = None  # an ingest key scoped to one customer

    @property
    def subject(self) -> str:
        return f"key:{self.key_id}"


def hash_key(secret: str) -> str:
    # A fast hash is right here: the secret is 256 random bits, not a password to stretch.
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(
    session: Session, *, scope: str, name: str | None = None, customer: str | None = None
) -> tuple[ApiKey, str]:
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {', '.join(SCOPES)}")
    if customer is not None and scope != "ingest":
        raise ValueError("only ingest keys can be scoped to a customer")
    secret = f"tw_{scope}_{secrets.token_urlsafe(32)}"
    key = ApiKey(
        id=f"key_{secrets.token_hex(8)}",
        name=name,
        scope=scope,
        key_hash=hash_key(secret),
        prefix=secret[: len(scope) + 8],
        customer=customer,
    )
    session.add(key)
    session.flush()
    return key, secret


# The live key with this hash, in the drivers' own parameter styles (psycopg, sqlite3).
_LOOKUP_SQL = "SELECT id, scope, customer FROM api_keys WHERE key_hash = {} AND revoked_at IS NULL"
_LOOKUP_POSTGRES = _LOOKUP_SQL.format("%s")
_LOOKUP_SQLITE = _LOOKUP_SQL.format("?")


def lookup_key(engine: Engine, secret: str) -> Principal | None:
    """The principal of a live (not revoked) key, or None, as the admission gate looks it up on
    every request: one statement, sent by the database driver itself on a pooled connection,
    outside any transaction (autocommit: one round trip, and on SQLite no write lock to wait for).
    Skipping SQLAlchemy's statement building, compilation cache and result processing makes it
    about a seventh of the CPU (BENCHMARKS.md); nothing is cached, so a revoked key is refused
    from the next request on."""
    with pooled_driver_connection(engine) as driver:
        sql = _LOOKUP_POSTGRES if isinstance(driver, psycopg.Connection) else _LOOKUP_SQLITE
        row = driver.execute(sql, (hash_key(secret),)).fetchone()
    return _principal(row)


async def lookup_key_async(engine: Engine, secret: str) -> Principal | None:
    """:func:`lookup_key` for the event loop: on PostgreSQL awaited on the engine's
    :class:`~tollway.db.AsyncDriverPool` (no thread hand-off), otherwise in the threadpool."""
    pool = async_pool(engine)
    if pool is None:
        return await run_in_threadpool(lookup_key, engine, secret)
    async with pool.connection() as conn:
        cursor = await conn.execute(_LOOKUP_POSTGRES, (hash_key(secret),))
        row = await cursor.fetchone()
    return _principal(row)


def _principal(row: Any) -> Principal | None:
    return None if row is None else Principal(key_id=row[0], scope=row[1], customer=row[2])


def list_keys(session: Session, *, limit: int | None = None, after: str | None = None) -> Sequence[ApiKey]:
    """Keys by id; with ``limit``, ``limit + 1`` rows after the cursor ``after`` (a page)."""
    query = select(ApiKey).order_by(ApiKey.id)
    if after is not None:
        query = query.where(ApiKey.id > decode_cursor(after))
    if limit is not None:
        query = query.limit(limit + 1)
    return session.scalars(query).all()


def revoke_key(session: Session, key_id: str, *, now: datetime) -> ApiKey:
    """Revoke a key (revoking it again changes nothing)."""
    key = session.get(ApiKey, key_id, with_for_update=True)
    if key is None:
        raise NotFound(f"API key '{key_id}' not found")
    if key.revoked_at is None:
        key.revoked_at = now
        session.flush()
    return key
