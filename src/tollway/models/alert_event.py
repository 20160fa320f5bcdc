from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tollway.db import Base, UTCDateTime
from tollway.kit.time import utcnow


class AlertEvent(Base):
    """A threshold that fired. Unique on (subscription, period, source, threshold): however many
    workers evaluate at once, a threshold fires once per subscription per billing period.
    ``source_key`` is ``plan:<meter>`` for plan notifications, ``alert:<id>`` for custom alerts."""

    __tablename__ = "alert_events"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(30))  # plan_notification | alert
    source_key: Mapped[str] = mapped_column(String(250))
    alert_id: Mapped[str | None] = mapped_column(String(200))
    customer_id: Mapped[str] = mapped_column(String(200))
    subscription_id: Mapped[str] = mapped_column(String(200))
    meter: Mapped[str | None] = mapped_column(String(200))
    metric: Mapped[str] = mapped_column(String(20))
    threshold: Mapped[str] = mapped_column(String(100))
    threshold_value: Mapped[str] = mapped_column(String(100))
    value: Mapped[str] = mapped_column(String(100))
    period_start: Mapped[datetime] = mapped_column(UTCDateTime)
    period_end: Mapped[datetime] = mapped_column(UTCDateTime)
    fired_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        UniqueConstraint("subscription_id", "period_start", "source_key", "threshold"),
        Index("ix_alert_events_customer", "customer_id", "id"),
    )
