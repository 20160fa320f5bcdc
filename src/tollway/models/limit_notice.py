from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from tollway.db import Base, UTCDateTime
from tollway.kit.time import utcnow


class LimitNotice(Base):
    """A ``limit.reached`` sent: at most one per subscription, limit and window (the primary key
    makes a second one a no-op, whichever process or backend noticed the crossing)."""

    __tablename__ = "limit_notices"

    subscription: Mapped[str] = mapped_column(String(200), primary_key=True)
    meter_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    window_kind: Mapped[str] = mapped_column(String(10), primary_key=True)
    action: Mapped[str] = mapped_column(String(10), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
