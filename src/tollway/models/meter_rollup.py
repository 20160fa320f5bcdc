from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import BigInteger
from sqlalchemy.orm import Mapped, mapped_column

from tollway.db import Base, ExactDecimal, UTCDateTime, identifier


class MeterRollup(Base):
    """Partial aggregates of one meter per customer, UTC hour and group, kept up to date as events
    are stored (and rebuilt from the events when a meter changes or an event is voided).

    The raw events stay the source of truth; rollups only make long ranges cheap to query.
    ``group_key`` is the JSON array of the meter's ``group_by`` values for these events.
    The values (``value_sum``, ``value_min``, ``value_max``, ``latest_value``) are exact
    (``db.ExactDecimal``: decimal text on SQLite).
    """

    __tablename__ = "meter_rollups"

    meter_key: Mapped[str] = mapped_column(identifier(), primary_key=True)
    customer: Mapped[str] = mapped_column(identifier(), primary_key=True)
    bucket_start: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    group_key: Mapped[str] = mapped_column(identifier(None), primary_key=True)
    event_count: Mapped[int] = mapped_column(BigInteger)
    value_sum: Mapped[Decimal | None] = mapped_column(ExactDecimal)
    value_min: Mapped[Decimal | None] = mapped_column(ExactDecimal)
    value_max: Mapped[Decimal | None] = mapped_column(ExactDecimal)
    latest_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    latest_id: Mapped[str | None] = mapped_column(identifier())
    latest_value: Mapped[Decimal | None] = mapped_column(ExactDecimal)
