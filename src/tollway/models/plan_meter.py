from __future__ import annotations

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from tollway.db import Base


class PlanMeter(Base):
    """A meter a plan refers to (in a charge, its revenue share, notifications or limits).

    Derived from the plan's documents by the catalog service on every write, so that "which
    published plans use this meter?" is one indexed query and a plan cannot name a missing meter.
    """

    __tablename__ = "plan_meters"

    plan_code: Mapped[str] = mapped_column(String(200), ForeignKey("plans.code", ondelete="CASCADE"), primary_key=True)
    meter_key: Mapped[str] = mapped_column(String(200), ForeignKey("meters.key"), primary_key=True, index=True)
