from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from tollway.db import Base, ExactDecimal, UTCDateTime, identifier


class LimitCounter(Base):
    """A limited meter's value for one customer and window (database counter backend), kept in
    the transaction that stores the events. ``value`` is exact: NUMERIC on PostgreSQL, decimal
    text on SQLite. Rows of windows that ended are purged by the worker."""

    __tablename__ = "limit_counters"

    customer: Mapped[str] = mapped_column(identifier(), primary_key=True)
    meter_key: Mapped[str] = mapped_column(identifier(), primary_key=True)
    window_kind: Mapped[str] = mapped_column(String(10), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    window_end: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    value: Mapped[Decimal] = mapped_column(ExactDecimal)

    __table_args__ = (Index("ix_limit_counters_window_end", "window_end"),)
