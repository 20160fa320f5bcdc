from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tollway.db import Base, UTCDateTime
from tollway.kit.time import utcnow


class PaymentLink(Base):
    """The mapping between a Tollway entity (``customer`` or ``invoice``) and its object at a payment
    provider, with the state of the sync for invoices.

    ``external_id`` is null until the provider object exists. For invoices, ``status`` is the
    payment status (pending, paid, failed, void, uncollectible), ``url`` the hosted payment page,
    and ``sync`` the work still owed to the provider (``push``, ``void`` or ``done``), retried at
    ``next_attempt_at`` with backoff after a failure (``attempts``, ``last_error``)."""

    __tablename__ = "payment_links"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(30))
    entity: Mapped[str] = mapped_column(String(20))
    tollway_id: Mapped[str] = mapped_column(String(200))
    external_id: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str | None] = mapped_column(String(20))
    url: Mapped[str | None] = mapped_column(String(2000))
    sync: Mapped[str] = mapped_column(String(10), default="done")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (
        UniqueConstraint("provider", "entity", "tollway_id", name="uq_payment_links_provider_entity_tollway_id"),
        Index("ix_payment_links_provider_external_id", "provider", "external_id"),
        Index("ix_payment_links_sync_next_attempt_at", "sync", "next_attempt_at"),
    )
