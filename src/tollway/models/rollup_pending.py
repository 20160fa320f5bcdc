from __future__ import annotations

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from tollway.db import Base


class RollupPending(Base):
    """Events stored but not yet added to the meters' rollups (the worker adds them in bulk).

    Usage queries read these events raw, in the same statement as the rollups, so a query counts
    every event exactly once whether or not it has been rolled up yet. ``customer`` (the event's)
    lets a limits check find its customer's pending events by index.
    """

    __tablename__ = "rollup_pending"

    event_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    customer: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (Index("ix_rollup_pending_customer", "customer"),)
