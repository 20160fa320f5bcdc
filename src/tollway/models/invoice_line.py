from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from tollway.db import Base, ExactDecimal, JSONDoc


class InvoiceLine(Base):
    """One line of a finalized invoice; ``amount_minor`` in the invoice's currency minor units.

    An ``adjustment`` line names the earlier invoice whose period it corrects in
    ``adjusts_invoice_id`` (late or voided events recomputed against what was billed)."""

    __tablename__ = "invoice_lines"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    invoice_id: Mapped[str] = mapped_column(String(40), ForeignKey("invoices.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(40))
    charge: Mapped[str | None] = mapped_column(String(200))
    meter: Mapped[str | None] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(String(1000))
    quantity: Mapped[Decimal] = mapped_column(ExactDecimal)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    details: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=dict)
    adjusts_invoice_id: Mapped[str | None] = mapped_column(String(40), ForeignKey("invoices.id"), index=True)
