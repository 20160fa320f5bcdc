from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from tollway.db import Base, UTCDateTime
from tollway.kit.time import utcnow


class ApiKey(Base):
    """An API key, stored only as a SHA-256 hash of the secret (keys are 256-bit random tokens)."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    scope: Mapped[str] = mapped_column(String(20))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # An ingest key scoped to one customer may only send events (and check limits) for it.
    customer: Mapped[str | None] = mapped_column(String(200))
