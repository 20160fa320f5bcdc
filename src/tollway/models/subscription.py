from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from tollway.db import Base, JSONDoc, UTCDateTime
from tollway.kit.time import utcnow


class Subscription(Base):
    """A customer's subscription to a published plan, from ``start`` to ``ends_at`` (open when null).

    A plan change ends this row at the switch (``changed_to`` names its successor, whose
    ``previous`` names this one). ``billed_until`` is the end of the last period finalized into an
    invoice: the billing run's bookmark, advanced in the same transaction as the invoice.
    """

    __tablename__ = "subscriptions"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(200), ForeignKey("customers.id"))
    plan_code: Mapped[str] = mapped_column(String(200), ForeignKey("plans.code"))
    start: Mapped[datetime] = mapped_column(UTCDateTime)
    # The customer's time zone when the subscription began: periods stay put if it changes later.
    timezone: Mapped[str] = mapped_column(String(64))
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    canceled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancel_mode: Mapped[str | None] = mapped_column(String(20))
    previous: Mapped[str | None] = mapped_column(String(200))
    changed_to: Mapped[str | None] = mapped_column(String(200))
    charge_setup_fee: Mapped[bool] = mapped_column(default=True)
    overrides: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=dict)
    billed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (Index("ix_subscriptions_customer_id", "customer_id"),)
