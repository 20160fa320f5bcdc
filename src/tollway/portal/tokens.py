"""Portal tokens: ``pt_`` + 256 random bits, looked up by SHA-256 hash (never stored in clear).

Kept apart from the portal service (few imports) because authentication consults it on every
route: a portal token on a non-portal route is a 403, not a 401."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from tollway.auth.keys import hash_key
from tollway.models import PortalSession

TOKEN_PREFIX = "pt_"  # noqa: S105 - a prefix, not a secret


@dataclass(frozen=True)
class PortalPrincipal:
    """Who calls the portal API: one session of one customer."""

    session_id: str
    customer_id: str
    permissions: frozenset[str]
    expires_at: datetime

    @property
    def subject(self) -> str:
        """Who this is for idempotency records, rate limits and logs (never the token)."""
        return f"portal:{self.session_id}"

    @property
    def can_subscribe(self) -> bool:
        return "subscribe" in self.permissions


def lookup(session: Session, token: str, *, now: datetime) -> PortalPrincipal | None:
    """The principal of a live token; ``None`` when unknown, tampered, expired or revoked."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    row = session.scalars(select(PortalSession).where(PortalSession.token_hash == hash_key(token))).first()
    if row is None or row.revoked_at is not None or row.expires_at <= now:
        return None
    return PortalPrincipal(row.id, row.customer_id, frozenset(row.permissions or []), row.expires_at)
