from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from tollway.db import Base, JSONDoc, UTCDateTime
from tollway.kit.time import utcnow


class PortalSession(Base):
    """A customer-portal session: a bearer token scoped to one customer, stored only as the
    SHA-256 hash of the token (a 256-bit random secret), valid until ``expires_at`` or revocation."""

    __tablename__ = "portal_sessions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(200), ForeignKey("customers.id"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    permissions: Mapped[list[Any]] = mapped_column(JSONDoc, default=list)
    return_url: Mapped[str | None] = mapped_column(String(2000))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index("ix_portal_sessions_customer_id", "customer_id"),)
