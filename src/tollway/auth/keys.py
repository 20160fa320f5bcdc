"""API keys: random 256-bit secrets, stored only as SHA-256 hashes, with a scope."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from tollway.models import ApiKey

SCOPES = ("admin", "ingest")


@dataclass(frozen=True)
class Principal:
    key_id: str
    scope: str
    customer: str | None = None  # an ingest key scoped to one customer


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


class KeyCache:
    """Caches successful look-ups for a few seconds, so ingestion does not hit the database for
    the key on every batch. A revoked key stops working within ``ttl`` seconds."""

    def __init__(self, ttl: float = 10.0) -> None:
        self.ttl = ttl
        self._items: dict[str, tuple[float, Principal]] = {}
        self._lock = threading.Lock()

    def lookup(self, session: Session, secret: str) -> Principal | None:
        digest = hash_key(secret)
        now = time.monotonic()
        with self._lock:
            hit = self._items.get(digest)
        if hit and hit[0] > now:
            return hit[1]
        row = session.execute(
            select(ApiKey.id, ApiKey.scope, ApiKey.customer).where(
                ApiKey.key_hash == digest, ApiKey.revoked_at.is_(None)
            )
        ).first()
        if row is None:
            return None
        principal = Principal(key_id=row.id, scope=row.scope, customer=row.customer)
        with self._lock:
            if len(self._items) > 10_000:
                self._items.clear()
            self._items[digest] = (now + self.ttl, principal)
        return principal
