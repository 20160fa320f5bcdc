from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from tollway.db import Base, UTCDateTime
from tollway.kit.time import utcnow


class CreditGrant(Base):
    """Prepaid credit granted to a customer, in the customer's currency (integer minor units).

    ``remaining_minor`` is the part not yet applied to invoices, expired or voided; it only moves
    together with a ``credit_ledger`` entry in the same transaction, so the ledger replays to it.
    Rows are locked (``FOR UPDATE``) whenever it moves."""

    __tablename__ = "credit_grants"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(200), ForeignKey("customers.id"))
    currency: Mapped[str] = mapped_column(String(3))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    remaining_minor: Mapped[int] = mapped_column(BigInteger)
    category: Mapped[str] = mapped_column(String(20))
    priority: Mapped[int] = mapped_column(Integer, default=0)
    effective_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    description: Mapped[str | None] = mapped_column(String(1000))
    voided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    """When the expiry was written to the ledger (``None`` until then)."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (Index("ix_credit_grants_customer_id", "customer_id", "currency"),)
