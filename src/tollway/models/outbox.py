from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from tollway.db import Base, JSONDoc, UTCDateTime
from tollway.kit.time import utcnow


class OutboxMessage(Base):
    """A domain event written in the same transaction as the change it reports
    (``invoice.finalized``, ``subscription.created``...). The worker delivers it to the registered
    handlers, marks it delivered, and retries with backoff on failure; rows are never deleted."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    topic: Mapped[str] = mapped_column(String(100))
    key: Mapped[str | None] = mapped_column(String(200))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    available_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    # Names of the handlers that have processed this message: after a failure only the others
    # run again (see notification.outbox.drain).
    handled: Mapped[list[str] | None] = mapped_column(JSONDoc)

    __table_args__ = (Index("ix_outbox_pending", "delivered_at", "available_at"),)
