from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Index, text
from sqlalchemy.orm import Mapped, mapped_column

from tollway.db import Base, JSONDoc, UTCDateTime, identifier


class Event(Base):
    """A usage event: append-only, unique on its caller-chosen id.

    ``timestamp`` is when the usage happened; ``ingested_at`` when Tollway stored it, so that any
    computation can be reproduced "as of" a moment. ``voided_at`` marks a correction: the event is
    kept for audit but stops counting.
    """

    __tablename__ = "events"

    id: Mapped[str] = mapped_column(identifier(), primary_key=True)
    customer: Mapped[str] = mapped_column(identifier())
    type: Mapped[str] = mapped_column(identifier())
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime)
    ingested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    properties: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    voided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set when a folded meter counts the event's type as it is stored: the storing transaction
    # (``meter.sql.pending``). Pending while ``tx >= rollup_watermark.next_tx``; NULL: never pending.
    tx: Mapped[int | None] = mapped_column(BigInteger)

    __table_args__ = (
        # Serves every meter query: one customer, one event type, a time range.
        Index("ix_events_customer_type_timestamp", "customer", "type", "timestamp"),
        # Billing's as-of reads and the forecast: the events ingested after a cutoff. BRIN on
        # PostgreSQL (migration 0025): the column grows with the table's pages, and an insert
        # then adds nothing to an index page every concurrent batch writes to; the worker
        # summarizes new page ranges (``event.store.summarize_new_pages``).
        Index(
            "ix_events_ingested_at",
            "ingested_at",
            postgresql_using="brin",
            postgresql_with={"pages_per_range": 32},
        ),
        # The few voided events, by when: a read as of a cutoff adds back those voided since.
        Index(
            "ix_events_voided_at",
            "voided_at",
            postgresql_where=text("voided_at IS NOT NULL"),
            sqlite_where=text("voided_at IS NOT NULL"),
        ),
        # GET /v1/events without a customer: newest first, walked backwards.
        Index("ix_events_timestamp", "timestamp"),
        # The worker's fold reads the pending events by range of tx; a limits check or a usage
        # query one customer's pending events. Partial: events no meter counted are left out.
        Index("ix_events_tx", "tx", postgresql_where=text("tx IS NOT NULL"), sqlite_where=text("tx IS NOT NULL")),
        Index(
            "ix_events_customer_tx",
            "customer",
            "tx",
            postgresql_where=text("tx IS NOT NULL"),
            sqlite_where=text("tx IS NOT NULL"),
        ),
    )
