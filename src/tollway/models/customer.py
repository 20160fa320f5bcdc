from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from tollway.db import Base, ExactDecimal, JSONDoc, UTCDateTime
from tollway.kit.time import utcnow


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(500))
    email: Mapped[str | None] = mapped_column(String(320))
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    category: Mapped[str | None] = mapped_column(String(200))
    company: Mapped[str | None] = mapped_column(String(200))
    # The buyer block of invoices (free text, lines separated by \n) and the buyer's tax id.
    address: Mapped[str | None] = mapped_column(String(2000))
    tax_id: Mapped[str | None] = mapped_column(String(100))
    tax_rate: Mapped[Decimal] = mapped_column(Numeric(9, 6), default=Decimal(0))
    # Prepaid credits: ``prepaid`` customers are refused by the limits check when their ongoing
    # balance is <= 0; the threshold (customer's currency) arms ``credits.low_balance``.
    billing_type: Mapped[str] = mapped_column(String(20), default="postpaid")
    low_balance_threshold: Mapped[Decimal | None] = mapped_column(ExactDecimal)
    # How the payment provider collects: charge_automatically | send_invoice.
    payment_collection: Mapped[str] = mapped_column(
        String(30), default="charge_automatically", server_default="charge_automatically"
    )
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONDoc, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
