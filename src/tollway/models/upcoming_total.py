from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from tollway.db import Base, UTCDateTime


class UpcomingTotal(Base):
    """The last computed total of a customer's upcoming invoice (its open periods), kept by the
    worker for customers with new events or a new period, so that the console's "expected this
    month" is a read of this table instead of pricing every customer live.

    ``total_minor`` is null when the customer's open periods are in several currencies;
    ``computed_at`` is the instant the total was computed for; ``events_seen_until`` the
    database's time when that refresh started (the next refresh looks at events ingested after
    it, less an overlap)."""

    __tablename__ = "upcoming_totals"

    customer_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    currency: Mapped[str | None] = mapped_column(String(3))
    total_minor: Mapped[int | None] = mapped_column(BigInteger)
    period_start: Mapped[datetime | None] = mapped_column(UTCDateTime)
    period_end: Mapped[datetime | None] = mapped_column(UTCDateTime)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    events_seen_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
