from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from tollway.db import Base, UTCDateTime
from tollway.kit.time import utcnow


class CreditLedgerEntry(Base):
    """One movement of a credit grant, append-only: ``grant`` (+amount), ``applied`` (- what an
    invoice used; + when a voided invoice gives it back), ``expired`` and ``voided`` (- what was
    left). ``amount_minor`` is signed, so the entries of a customer in ``at`` order sum to its
    balance. ``at`` is when the movement takes effect (a grant's ``effective_at``, an expiry's
    ``expires_at``); ``id`` is the order in which entries were written."""

    __tablename__ = "credit_ledger"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(String(200), ForeignKey("customers.id"))
    grant_id: Mapped[str] = mapped_column(String(200), ForeignKey("credit_grants.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    currency: Mapped[str] = mapped_column(String(3))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    invoice_id: Mapped[str | None] = mapped_column(String(40), ForeignKey("invoices.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index("ix_credit_ledger_customer_id", "customer_id", "id"),)
