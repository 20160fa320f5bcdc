from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from tollway.db import Base, JSONDoc, UTCDateTime


class LimitProfile(Base):
    """The limits a customer's counters are kept for (database counter backend), as seeded.

    Ingestion counts each stored event into the windows of this profile; a check that finds the
    subscriptions saying something else (``version`` differs) seeds the counters again."""

    __tablename__ = "limit_profiles"

    customer: Mapped[str] = mapped_column(String(200), primary_key=True)
    version: Mapped[str] = mapped_column(String(64))
    profile: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    seeded_at: Mapped[datetime] = mapped_column(UTCDateTime)
