from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tollway.db import Base, JSONDoc, UTCDateTime
from tollway.kit.time import utcnow


class Invoice(Base):
    """A finalized invoice for one subscription period. Amounts are integer minor units of
    ``currency`` (ISO 4217). Once finalized only ``status`` moves (paid, void); corrections are
    adjustment lines on a later invoice. ``as_of`` is the ingestion-time cutoff of the usage it
    counted, so it can be recomputed and explained."""

    __tablename__ = "invoices"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    number: Mapped[str] = mapped_column(String(40), unique=True)
    customer_id: Mapped[str] = mapped_column(String(200), ForeignKey("customers.id"))
    subscription_id: Mapped[str] = mapped_column(String(200), ForeignKey("subscriptions.id"))
    plan_code: Mapped[str] = mapped_column(String(200))
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(20), default="finalized")
    # "regular": one subscription period. "correction": adjustment lines only, for a subscription
    # that ended, covering the time after its last invoice (see invoice/correct.py).
    kind: Mapped[str] = mapped_column(String(20), default="regular", server_default="regular")
    period_start: Mapped[datetime] = mapped_column(UTCDateTime)
    period_end: Mapped[datetime] = mapped_column(UTCDateTime)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    as_of: Mapped[datetime] = mapped_column(UTCDateTime)
    tax_rate: Mapped[Decimal] = mapped_column(Numeric(9, 6))
    subtotal_minor: Mapped[int] = mapped_column(BigInteger)
    tax_minor: Mapped[int] = mapped_column(BigInteger)
    total_minor: Mapped[int] = mapped_column(BigInteger)
    # Prepaid credits applied at finalization (the ledger's ``applied`` entries name this invoice)
    # and what is left to pay: total - credits_applied.
    credits_applied_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    amount_due_minor: Mapped[int] = mapped_column(BigInteger)
    # What the document printed when it was finalized (seller, buyer, plan and meter names, terms):
    # an issued invoice never changes when the customer or the settings do. See invoice/snapshot.py.
    snapshot: Mapped[dict[str, Any] | None] = mapped_column(JSONDoc)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    voided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (
        UniqueConstraint("subscription_id", "period_start", name="uq_invoices_subscription_id_period_start"),
        Index("ix_invoices_customer_id_issued_at", "customer_id", "issued_at"),
        # Figures over every customer (console overview, simulator): by period, and what is due.
        Index("ix_invoices_period_start", "period_start"),
        Index("ix_invoices_status_due_at", "status", "due_at"),
    )
