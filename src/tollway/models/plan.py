from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tollway.db import Base, JSONDoc, UTCDateTime
from tollway.kit.time import utcnow
from tollway.models.plan_meter import PlanMeter


class Plan(Base):
    """A price plan. Scalar terms are columns; the pricing and policy sub-documents (audience,
    fees, charges, revenue share, notifications, limits) are JSON documents in the contract's
    shape, with every number stored as a decimal string (never a float).

    ``status`` is ``draft`` (editable, deletable) or ``published`` (frozen but for ``end_date``).
    """

    __tablename__ = "plans"

    code: Mapped[str] = mapped_column(String(200), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(500))
    description: Mapped[str | None] = mapped_column(String(2000))
    currency: Mapped[str] = mapped_column(String(3))
    bundle: Mapped[str | None] = mapped_column(String(200), ForeignKey("bundles.code"))
    interval: Mapped[str] = mapped_column(String(10))
    interval_count: Mapped[int] = mapped_column(Integer, default=1)
    billing_anchor: Mapped[str] = mapped_column(String(20))
    visibility: Mapped[str] = mapped_column(String(10), index=True)
    audience: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    payment_terms_days: Mapped[int | None] = mapped_column(Integer)  # None: the settings' terms
    contract_months: Mapped[int | None] = mapped_column(Integer)
    free_period_days: Mapped[int] = mapped_column(Integer, default=0)
    fees: Mapped[dict[str, Any] | None] = mapped_column(JSONDoc)
    charges: Mapped[list[dict[str, Any]]] = mapped_column(JSONDoc, default=list)
    revenue_share: Mapped[dict[str, Any] | None] = mapped_column(JSONDoc)
    notifications: Mapped[dict[str, Any] | None] = mapped_column(JSONDoc)
    limits: Mapped[list[dict[str, Any]]] = mapped_column(JSONDoc, default=list)
    start_date: Mapped[datetime | None] = mapped_column(UTCDateTime)
    end_date: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(20), default="draft", index=True)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    # The meters this plan names, kept in step with the documents by the catalog service.
    meter_links: Mapped[list[PlanMeter]] = relationship(cascade="all, delete-orphan", passive_deletes=True)
