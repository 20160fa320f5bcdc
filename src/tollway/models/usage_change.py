from __future__ import annotations

from sqlalchemy.orm import Mapped, mapped_column

from tollway.db import Base, identifier


class UsageChange(Base):
    """A customer whose usage changed since alerts were last evaluated for it. Rolling events up
    notes their customers here (in the same transaction); the alert step claims and clears the
    rows, so evaluation reads only customers with new usage, never every customer."""

    __tablename__ = "usage_changes"

    customer: Mapped[str] = mapped_column(identifier(), primary_key=True)
