from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from tollway.db import Base, JSONDoc, UTCDateTime
from tollway.kit.time import utcnow


class Meter(Base):
    __tablename__ = "meters"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(500))
    description: Mapped[str | None] = mapped_column(String(2000))
    event_type: Mapped[str] = mapped_column(String(200), index=True)
    aggregation: Mapped[str] = mapped_column(String(20))
    value_property: Mapped[str | None] = mapped_column(String(500))
    filters: Mapped[list[dict[str, Any]]] = mapped_column(JSONDoc, default=list)
    group_by: Mapped[list[str]] = mapped_column(JSONDoc, default=list)
    # The rollups' build (meter.rollup): "ready", or "building" while the worker builds them
    # customer by customer after the meter was created or changed; usage reads raw events until
    # it is ready. The cursor is the last customer built.
    rollup_status: Mapped[str] = mapped_column(String(20), default="ready", server_default="ready")
    rollup_cursor: Mapped[str | None] = mapped_column(String(200))
    rollup_customers_built: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    rollup_customers_total: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
