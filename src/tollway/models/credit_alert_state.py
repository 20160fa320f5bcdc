from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from tollway.db import Base, UTCDateTime
from tollway.kit.time import utcnow


class CreditAlertState(Base):
    """Which balance notifications are armed for a customer: ``credits.low_balance`` and
    ``credits.depleted`` fire once when the ongoing balance crosses down, and re-arm when it goes
    back above. The row is locked while a crossing is decided, so two workers fire it once."""

    __tablename__ = "credit_alert_states"

    customer_id: Mapped[str] = mapped_column(String(200), ForeignKey("customers.id"), primary_key=True)
    low_fired: Mapped[bool] = mapped_column(Boolean, default=False)
    depleted_fired: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
