from __future__ import annotations

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from tollway.db import Base


class InvoiceSequence(Base):
    """A gapless counter for invoice numbers: the row is locked (``FOR UPDATE``) and advanced
    inside the transaction that writes the invoice, so a rolled-back invoice gives its number back."""

    __tablename__ = "invoice_sequences"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    last_value: Mapped[int] = mapped_column(BigInteger, default=0)
