from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Integer, LargeBinary, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tollway.db import Base, UTCDateTime, identifier


class DistinctPeriod(Base):
    """A billing period ``[period_start, period_end)`` of one customer for which the worker keeps
    the distinct values of one ``unique_count`` meter (``meter.distinct``). A row exists only once
    its values are complete: it is inserted and filled from the events in one transaction."""

    __tablename__ = "distinct_periods"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    meter_key: Mapped[str] = mapped_column(identifier())
    customer: Mapped[str] = mapped_column(identifier())
    period_start: Mapped[datetime] = mapped_column(UTCDateTime)
    period_end: Mapped[datetime] = mapped_column(UTCDateTime)
    # The number of values in the set, kept by every step that adds or removes one.
    value_count: Mapped[int] = mapped_column(BigInteger, server_default="0")

    __table_args__ = (UniqueConstraint("meter_key", "customer", "period_start", "period_end"),)


class DistinctValue(Base):
    """One distinct value (its SHA-256 digest) of a :class:`DistinctPeriod`, with the number of
    live events rolled up that carry it: a void takes one off, and the value leaves the set when
    none is left."""

    __tablename__ = "distinct_values"

    period_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    digest: Mapped[bytes] = mapped_column(LargeBinary, primary_key=True)
    events: Mapped[int] = mapped_column(BigInteger)
