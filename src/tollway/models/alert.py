from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from tollway.db import Base, JSONDoc, UTCDateTime
from tollway.kit.time import utcnow


class Alert(Base):
    """A custom alert: thresholds on a meter's usage or on the upcoming invoice's total (spend),
    for one customer or (``customer_id`` null) every customer. Thresholds are decimal strings."""

    __tablename__ = "alerts"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    customer_id: Mapped[str | None] = mapped_column(String(200), index=True)
    metric: Mapped[str] = mapped_column(String(20))  # usage | spend
    meter: Mapped[str | None] = mapped_column(String(200))
    thresholds: Mapped[list[str]] = mapped_column(JSONDoc)
    channels: Mapped[list[str]] = mapped_column(JSONDoc)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
